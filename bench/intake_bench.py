"""What the mail-in door and the webhook deliveries cost, each against a baseline measured in the same run.

- mailbox: N mails from a known customer, each with one phone photo, sent to `intake.mailbox` (aiosmtpd in
  a thread of this process: the decision, the message stored, the take job queued) until its 250; the
  baseline is the same mails to a bare aiosmtpd handler that answers 250 at once (SMTP itself). Then N
  mails from a stranger, refused with 550 and kept in the quarantine.
- webhooks: N events, each delivered by `events.deliver` (the record read, the body signed, POST, the
  attempt recorded under a Redis lock) to a local HTTP receiver; the baseline is a plain `httpx.post` of the
  same body to the same receiver.

    .venv/bin/python bench/intake_bench.py --mails 40 --events 200
"""

from __future__ import annotations

import argparse
import contextlib
import io
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from redis import Redis  # noqa: E402

import events  # noqa: E402
from intake import contacts  # noqa: E402
from intake.mailbox import controller  # noqa: E402
from models import load  # noqa: E402
from settings import Settings  # noqa: E402
from storage import open_store  # noqa: E402
from supervisor import free_port  # noqa: E402
from tests.servers import redis_server  # noqa: E402
from vocabulary import EventKind  # noqa: E402

CUSTOMER = "li.si@example.cn"


def photo(seed: int) -> bytes:
    image = Image.new("RGB", (1600, 1200), (236, 232, 225))
    draw = ImageDraw.Draw(image)
    for row in range(30):
        draw.line((100, 100 + row * 35, 1500, 100 + row * 35), fill=(30, 30, 30), width=2)
        draw.text((110, 110 + row * 35), f"item {seed}-{row}  {row * 13}.50", fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def mail(sender: str, n: int, picture: bytes) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        sender,
        "claims@localhost",
        f"理赔号 CL20261130{n:05d}",
    )
    message["Message-ID"] = f"<bench-{sender}-{n}@example.cn>"
    message.set_content("材料见附件")
    message.add_attachment(picture, maintype="image", subtype="jpeg", filename=f"invoice-{n}.jpg")
    return message.as_bytes(policy=SMTP)  # CRLF line ends, as a mail server sends them


def timed_sends(port: int, messages: list[bytes], sender: str) -> list[float]:
    times = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for raw in messages:
            started = time.perf_counter()
            with contextlib.suppress(smtplib.SMTPDataError):  # refused: what the stranger's run measures
                smtp.sendmail(sender, ["claims@localhost"], raw)
            times.append(time.perf_counter() - started)
    return times


class Bare:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "250 OK"


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[int(len(values) * 0.95) - 1]
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def ratio(values: list[float], baseline: list[float]) -> str:
    return f"ratio {statistics.median(values) / statistics.median(baseline):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=40)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis:
        receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{receiver.server_port}/hook"
        settings = Settings(
            data_dir=Path(tmp) / "var", redis_url=redis.url, mailbox_port=free_port(),
            webhooks=f"*={url}", webhook_secret=SecretStr("bench secret"),
        )  # fmt: skip
        store, conn = open_store(settings), Redis.from_url(redis.url)
        contacts.note(store, CUSTOMER, "110105198703150013", "P2026110000123")
        pictures = [photo(n) for n in range(args.mails)]
        known = [mail(CUSTOMER, n, p) for n, p in enumerate(pictures)]
        strangers = [mail("someone@else.example", n, p) for n, p in enumerate(pictures)]
        size = statistics.mean(len(m) for m in known) / 1024

        bare_port = free_port()
        bare = Controller(Bare(), hostname="127.0.0.1", port=bare_port)
        bare.start()
        door = controller(settings, store, conn)
        door.start()
        timed_sends(bare_port, known[:3], CUSTOMER)  # warm-up, both sides
        timed_sends(settings.mailbox_port, [mail(CUSTOMER, 99999, pictures[0])], CUSTOMER)
        baseline = timed_sends(bare_port, known, CUSTOMER)
        taken = timed_sends(settings.mailbox_port, known, CUSTOMER)
        refused = timed_sends(settings.mailbox_port, strangers, "someone@else.example")
        bare.stop()
        door.stop()
        kept = sum(1 for i in store.list("mailin/") if i.key.endswith(".json"))
        quarantined = sum(1 for i in store.list("quarantine/mail/") if i.key.endswith(".json"))
        print(f"mails of {size:.0f} KiB, {args.mails} of each kind: {kept} taken in, {quarantined} refused")
        print(f"bare SMTP 250 (baseline): {ms(baseline)}")
        print(f"mailbox, taken in (stored, queued): {ms(taken)}; {ratio(taken, baseline)}")
        print(f"mailbox, stranger refused (quarantined): {ms(refused)}; {ratio(refused, baseline)}")

        kind = EventKind.document_completed
        ids = [
            events.emit(conn, store, settings, kind, f"d{n:08d}", {"n": n})[0].event_id
            for n in range(args.events)
        ]
        body = load(store, events.Event, ids[0]).body()
        runs = {}
        with httpx.Client() as client:
            for name, post in (
                (
                    "httpx.post, a new client each (how deliveries went first)",
                    lambda: httpx.post(url, content=body),
                ),
                ("one client's post (baseline)", lambda: client.post(url, content=body)),
            ):
                started, times = time.perf_counter(), []
                for _ in ids:
                    t = time.perf_counter()
                    post()
                    times.append(time.perf_counter() - t)
                runs[name] = (times, time.perf_counter() - started)
        started, times = time.perf_counter(), []
        for event_id in ids:
            t = time.perf_counter()
            events.deliver(conn, store, settings, event_id, 0)
            times.append(time.perf_counter() - t)
        runs["events.deliver (record read, signed, POST, attempt recorded)"] = (
            times,
            time.perf_counter() - started,
        )
        base = runs["one client's post (baseline)"][0]
        for name, (times, total) in runs.items():
            print(f"{name}: {ms(times)}, {len(times) / total:.0f}/s; {ratio(times, base)}")
        receiver.shutdown()


if __name__ == "__main__":
    main()
