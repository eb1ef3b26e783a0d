"""A day of activity through the real stages, and the managers' figures checked against what it is known
to hold: scans captured by a real worker process (a form with a handwritten name and two cards at one
branch, a blurred form at another), every field keyed by three keyers (the name blind by two who differ,
settled by the third), two e-policies signed and mailed through aiosmtpd, one downloaded and
acknowledged by its customer. The known counts come from the scans' own answers, the keyers' answers and
the stored records, never from the figures."""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

import figures
from api import create_app
from capture.render import render_form, render_idcard
from capture.templates import latest
from cli import imaging
from esign.epolicy import sample_request
from esign.keys import init_test_keys
from models import DocumentRecord, Scan, load
from people.identity import key_id
from settings import Settings
from storage import open_store
from tests.capture.scans import handwrite, place_cards, scan_page
from tests.conftest import (
    ADMIN_KEY,
    KEYER2_KEY,
    KEYER3_KEY,
    KEYER_KEY,
    ROOT,
    SALES_KEY,
    add_staff,
    running_workers,
    settings_env,
    wait_until,
)
from tests.servers import MailServer

VALUES = __import__("json").loads((ROOT / "capture" / "sample_values.json").read_text())
TRUTH = VALUES | {"holder_id_number": VALUES["id_number"]}
WRONG_NAME = "张三峰"  # the second blind keyer's reading of the handwritten name: loses the arbitration
CHECK = re.compile(r'name="version" value="(\d+)"><input type="hidden" name="check" value="([0-9a-f]+)"')


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(out, format="JPEG", quality=90, dpi=(300, 300))
    return out.getvalue()


def _token(admin: TestClient, owner: str, role: str) -> dict[str, str]:
    made = admin.post(
        "/v1/tokens",
        json={"kind": "personal", "owner": owner, "roles": [role]},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert made.status_code in (200, 201), made.text
    return {"X-API-Key": made.json()["token"]}


def _scan(client: TestClient, headers: dict, files: list[bytes]) -> dict:
    answer = client.post(
        "/v1/scans?wait=60",
        files=[("file", (f"page{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)],
        data={"mode": "immediate"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "captured", answer.json()
    return answer.json()


def _key_everything(client: TestClient) -> tuple[Counter, Counter, Counter]:
    """Key every task as three keyers taking turns; return each keyer's values, blind values decided,
    and blind values that lost an arbitration (as the keyers' own answers say)."""
    keyers = {key_id(k): {"X-API-Key": k} for k in (KEYER_KEY, KEYER2_KEY, KEYER3_KEY)}
    keyed, checked, lost = Counter(), Counter(), Counter()
    blind: dict[str, list[tuple[str, str]]] = {}
    idle = 0
    while idle < len(keyers):
        idle = 0
        for keyer, headers in keyers.items():
            task = client.get("/v1/keyentry/next", headers=headers).json()["task"]
            if task is None:
                idle += 1
                continue
            value = TRUTH[task["field"]]
            earlier = blind.setdefault(task["task_id"], [])
            if task["field"] == "applicant_name" and task["round"] == "blind" and earlier:
                value = WRONG_NAME
            said = client.post(f"/v1/keyentry/{task['task_id']}", json={"value": value}, headers=headers)
            assert said.status_code == 200, said.text
            keyed[keyer] += 1
            if task["round"] == "blind":
                earlier.append((keyer, value))
            if said.json()["status"] == "waiting":
                continue
            for who, typed in earlier if len(earlier) == 2 else []:  # decided: by agreement or arbiter
                checked[who] += 1
                lost[who] += typed != said.json()["value"]
    return keyed, checked, lost


def _epolicies(client: TestClient, smtp_srv: MailServer, settings: Settings) -> None:
    """Issue two e-policies; once both are mailed, the first one's customer downloads it and acknowledges."""
    for policy_no in ("P2026113000001", "P2026113000002"):
        body = sample_request().model_copy(update={"policy_no": policy_no}).model_dump(mode="json")
        assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    wait_until(lambda: len(smtp_srv.messages) >= 2, 120, "two e-policy mails")
    first = next(m for m in smtp_srv.messages if "P2026113000001" in str(m["Subject"]) + m.as_string())
    token = re.search(r"/epolicy/(\S+)", first.get_body(("plain",)).get_content()).group(1)
    page = client.get(f"/epolicy/{token}")
    assert client.get(f"/epolicy/{token}/pdf").status_code == 200
    version, check = CHECK.search(page.text).groups()
    done = client.post(f"/epolicy/{token}/receipt", data={"version": version, "check": check})
    assert done.status_code in (200, 303)


def _known_fields(answers: list[dict]) -> tuple[Counter, Counter]:
    total, straight = Counter(), Counter()
    for answer in answers:
        for document in answer["documents"]:
            for name, field in document["fields"].items():
                total[name] += 1
                straight[name] += field["status"] == "accepted"
    return total, straight


def _known_times(settings: Settings, scan_id: str) -> list[int]:
    """Seconds from the upload to each complete document's last value, as the stored records say."""
    store = open_store(settings)
    scan = load(store, Scan, scan_id)
    times = []
    for doc_id in scan.documents:
        record = load(store, DocumentRecord, doc_id)
        if record.complete:
            last = max([record.captured_at, *(e.at for f in record.fields.values() for e in f.entries)])
            times.append(round((last - scan.uploaded_at).total_seconds()))
    return sorted(times)


def test_the_figures_of_a_seeded_day_are_the_counts_it_is_known_to_hold(
    settings: Settings, smtp_srv: MailServer, tmp_path: Path
) -> None:
    smtp_srv.messages.clear()
    settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp_srv.port, "max_upload_bytes": 32 * 1024 * 1024}
    )
    init_test_keys(settings.keys_dir)
    add_staff(settings, "scan.bj", "scanner", branch="861101")
    add_staff(settings, "scan.tj", "scanner", branch="861201")
    add_staff(settings, "mgr.bj", "manager", branch="8611")
    client = TestClient(create_app(settings))
    beijing, tianjin = _token(client, "scan.bj", "scanner"), _token(client, "scan.tj", "scanner")
    manager = _token(client, "mgr.bj", "manager")

    rng = np.random.default_rng(20)
    form = latest("application_form")
    page = render_form(form, {**VALUES, "applicant_name": ""}, 300)
    page = handwrite(page, form.field("applicant_name").box, VALUES["applicant_name"], rng)
    cards, _ = place_cards(
        [render_idcard(latest("idcard_front"), VALUES), render_idcard(latest("idcard_back"), VALUES)],
        rng,
        dpi=300,
    )
    blurred, _ = scan_page(render_form(form, VALUES, 300), rng, dpi=300, angle=1.0, blur=6.0)
    with running_workers(settings, 1, tmp_path / "workers"):
        first = _scan(client, beijing, [_jpeg(scan_page(page, rng, dpi=300, angle=1.5)[0]), _jpeg(cards)])
        second = _scan(client, tianjin, [_jpeg(blurred)])
        _epolicies(client, smtp_srv, settings)
        waiting = client.get("/v1/figures", headers=manager).json()["backlog"]
        assert [(b["branch"], b["waiting"]) for b in waiting] == [("861101", first["fields_pending"])]
        assert 0 < waiting[0]["oldest_seconds"] < 600
        keyed, checked, lost = _key_everything(client)
    assert lost[key_id(KEYER2_KEY)] + lost[key_id(KEYER_KEY)] + lost[key_id(KEYER3_KEY)] == 1

    day = figures.day_of(figures.datetime.now(figures.ZONE))
    span = f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"  # a day that crosses midnight
    mine = client.get(f"/v1/figures?{span}", headers=manager).json()
    assert {r["branch"] for r in mine["rows"]} == {"861101", ""}  # not Tianjin's 861201
    bj = Counter()
    for row in mine["rows"]:
        if row["branch"] == "861101":
            bj.update({k: v for k, v in row["figures"].items() if isinstance(v, int)})
    total, straight = _known_fields([first])
    assert (bj["scans"], bj["pages"], bj["documents"]) == (1, first["pages"], len(first["documents"]))
    assert bj["rescans"] == 0 and bj["fields_total"] == sum(total.values())
    got = client.get(f"/v1/figures?{span}&branch=861101", headers=manager).json()["total"]
    assert {f["field"]: (f["total"], f["straight"]) for f in got["fields"]} == {
        n: (total[n], straight[n]) for n in total
    }
    assert {k["keyer"]: (k["keyed"], k["checked"], k["lost"]) for k in got["keyers"]} == {
        k: (keyed[k], checked[k], lost[k]) for k in keyed
    }
    times = _known_times(settings, first["scan_id"])
    assert got["completed"] == len(times) == len(first["documents"])
    assert got["complete_median_seconds"] == times[(len(times) - 1) // 2]
    assert got["complete_p90_seconds"] == times[math.ceil(0.9 * len(times)) - 1]
    assert mine["backlog"] == []  # everything keyed
    assert mine["total"]["epolicies"] == {"issued": 2, "delivered": 2, "downloaded": 1, "acknowledged": 1}
    assert client.get(f"/v1/figures?{span}&branch=861201", headers=manager).status_code == 403

    everyone = client.get(f"/v1/figures?{span}&branch=861201", headers={"X-API-Key": ADMIN_KEY}).json()
    tj = everyone["total"]
    assert (tj["scans"], tj["pages"], tj["documents"], tj["rescans"]) == (1, 1, len(second["documents"]), 1)
    assert tj["rescan_reasons"] == {"blurred": 1} and tj["rescan_rate"] == 1 / len(second["documents"])

    csv = client.get(f"/v1/figures.csv?{span}&branch=861101", headers=manager)
    assert csv.headers["content-type"].startswith("text/csv") and csv.content.startswith(b"\xef\xbb\xbf")
    assert f"{day},861101,scans,,1" in csv.text
    assert f"{day},861101,keyer_accuracy,{key_id(KEYER2_KEY)}," in csv.text

    # Redis loses the figures: the rebuild from the records gives the same answer.
    before = client.get(f"/v1/figures?{span}", headers={"X-API-Key": ADMIN_KEY}).json()
    conn = client.app.state.redis
    conn.delete(*conn.keys(f"{figures.PREFIX}*"))
    assert client.get(f"/v1/figures?{span}", headers={"X-API-Key": ADMIN_KEY}).json()["rows"] == []
    days = ["figures", "rebuild", "--day", str(day - timedelta(days=1)), "--to", str(day)]
    rebuilt = CliRunner().invoke(imaging, days, env=settings_env(settings))
    assert rebuilt.exit_code == 0, rebuilt.output
    after = client.get(f"/v1/figures?{span}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert after["rows"] == before["rows"]
