"""E-policies per second: on one core the worker's way, through the API and one worker, and end to end.

    .venv/bin/python bench/epolicy_bench.py [--policies 30] [--up 60] [--long-term] [--cli]

*as the worker does it*: render, encrypt and certify the customer's copy, certify the archive copy,
store both (esign/sign.py's ``seal``); *before*: the same with the way it was done up to 92361d7, rebuilt
here so that both are measured in one run on the same machine: pyHanko's own signed attributes (the
signing-certificate attribute built and serialised again for each signature) and the customer's copy
encrypted, written, opened again with its password and then signed; *naive*: that, plus the PKCS#12
opened for every policy and pyHanko left to find the signature's size by a dry run. With ``--cli``, one
certified copy per policy through pyHanko's command line (Python, pyHanko and the key loaded each time).
Then request to stored PDF through `POST /v1/epolicies`, a real Redis and one `imaging worker`, one at a
time; and with ``--up N``, N policies posted at once to `imaging up` (two workers) until every mail is in
the outbox: policies per second from the first request to the last mail sent. ``--long-term`` adds the
worker's way at PAdES B-LT and B-LTA against a certomancer CA on this machine (OCSP, CRLs, TSA over HTTP).

The rows on one core count this process's CPU time (``time.process_time``), not the clock: the machine is
shared, and another program's load would otherwise count as ours. The rows through the service, and the
long-term rows (they wait on the network), are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import esign.sign as sign  # noqa: E402
from esign.epolicy import sample_request  # noqa: E402
from esign.keys import init_test_keys  # noqa: E402
from esign.render import SEAL_BOX, document_metadata, render  # noqa: E402
from storage import LocalStore  # noqa: E402

SALES_KEY = "bench-sales-key-" + "s" * 16


# GB 2312's 3,755 level-1 characters (the common ones), the pool the made-up names are drawn from.
COMMON = bytes(b for row in range(0xB0, 0xD8) for col in range(0xA1, 0xFF) for b in (row, col)).decode(
    "gb2312", errors="ignore"
)


def _name(i: int, length: int) -> str:
    """Return the i-th made-up Chinese name: common characters spread over the pool, so that each policy
    brings characters the earlier ones did not use, as real customers' names do."""
    return "".join(COMMON[(i * 7919 + k * 1693) % len(COMMON)] for k in range(length))


def _policies(n: int, prefix: str = "P2026"):
    """Return n policies, each with its own number and its own holder's and insured's names."""
    base = sample_request()
    return [
        base.model_copy(
            update={
                "policy_no": f"{prefix}{i:09d}",
                "holder": base.holder.model_copy(update={"name": _name(i, 3)}),
                "insured": base.insured.model_copy(update={"name": _name(i + 100_000, 2)}),
            }
        )
        for i in range(n)
    ]


def _url(policy) -> str:
    return f"https://epolicy.example.com/verify/{policy.policy_no}"


def _run(policies, store: LocalStore, get_signer, seal, clock=time.process_time) -> list[float]:
    times = []
    for policy in policies:
        began = clock()
        copies = seal(policy, get_signer())
        store.put(f"epolicies/{policy.policy_no}/v1.pdf", copies.customer, "application/pdf")
        store.put(f"epolicies/{policy.policy_no}/v1.archive.pdf", copies.archive, "application/pdf")
        times.append(clock() - began)
    return times


def _seal_now(timestamper=None, long_term=None):
    """Return the worker's way: render at the time of sealing, seal with the document's metadata."""

    def seal(policy, signer) -> sign.SignedCopies:
        now = datetime.now(UTC)
        pdf = render(policy, 1, _url(policy), now)
        return sign.seal(
            pdf, signer, "150013", "owner", timestamper, document=document_metadata(policy, 1, now),
            long_term=long_term,
        )  # fmt: skip

    return seal


def _plain_pkcs12(paths):
    """The signer as pyHanko loads it, without the attributes built once (the way before)."""
    from pyhanko.sign import signers

    return signers.SimpleSigner.load_pkcs12(str(paths["pkcs12"]), passphrase=paths["passphrase"].read_bytes())


def _seal_before(reserve: bool):
    """Return the way seal() worked up to 92361d7: encrypt, write, open again, sign incrementally."""

    def seal(policy, signer) -> sign.SignedCopies:
        pdf = render(policy, 1, _url(policy))
        encrypted = sign.encrypt(pdf, "150013", "owner")
        customer = sign.certify(encrypted, signer, "150013", reserve=reserve)
        return sign.SignedCopies(customer=customer, archive=sign.certify(pdf, signer, reserve=reserve))

    return seal


def _one_copy_cli(policies, pkcs12: Path, passfile: Path, tmp: Path) -> list[float]:
    pyhanko = Path(sys.executable).with_name("pyhanko")
    box = "1/" + ",".join(str(round(v)) for v in SEAL_BOX) + "/" + sign.FIELD
    times = []
    for policy in policies:
        began = time.perf_counter()
        (tmp / "in.pdf").write_bytes(render(policy, 1, _url(policy)))
        subprocess.run(
            [str(pyhanko), "sign", "addsig", "--field", box, "--certify", "--use-pades", "pkcs12",
             "--passfile", str(passfile), str(tmp / "in.pdf"), str(tmp / "out.pdf"), str(pkcs12)],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - began)
    return times


def _long_term(policies, store: LocalStore, directory: Path) -> dict[str, list[float]]:
    """Wall-clock seconds per policy at B-T, B-LT and B-LTA against a certomancer CA on this machine."""
    from tests.esign.test_long_term import certomancer_ca

    rows = {}
    with certomancer_ca(directory) as ca:
        for level in ("B-T", "B-LT", "B-LTA"):
            settings = ca.settings(level)
            seal = _seal_now(sign.timestamper_from_settings(settings), sign.long_term_from_settings(settings))
            signer = sign.signer_from_settings(settings)
            _run(policies[:1], store, lambda s=signer: s, seal, time.perf_counter)
            label = f"as the worker does it, {level} (certomancer's TSA, OCSP and CRLs over HTTP; wall clock)"
            rows[label] = _run(policies, store, lambda s=signer: s, seal, time.perf_counter)
    return rows


def _through_the_service(n: int, tmp: Path) -> list[float]:
    """Seconds from POST /v1/epolicies to the stored customer PDF, one request at a time, on a real
    Redis, a local store and one `imaging worker` process."""
    from fastapi.testclient import TestClient

    from api import create_app
    from settings import Settings
    from tests.conftest import running_workers
    from tests.servers import redis_server

    tmp.mkdir(parents=True, exist_ok=True)
    with redis_server(tmp) as redis:
        settings = Settings(data_dir=tmp / "var", redis_url=redis.url, api_keys=f"{SALES_KEY}:sales")
        init_test_keys(settings.keys_dir)
        client = TestClient(create_app(settings))
        store = LocalStore(settings.objects_dir)
        times = []
        with running_workers(settings, 1, tmp / "workers"):
            for i, policy in enumerate(_policies(n + 2)):
                began = time.perf_counter()
                response = client.post(
                    "/v1/epolicies", json=policy.model_dump(mode="json"), headers={"X-API-Key": SALES_KEY}
                )
                assert response.status_code == 202, response.text
                while not store.exists(f"epolicies/{policy.policy_no}/v1.pdf"):
                    time.sleep(0.005)
                if i >= 2:  # the first two warm the worker up
                    times.append(time.perf_counter() - began)
    return times


def _post(base: str, policy) -> None:
    request = urllib.request.Request(
        base + "/v1/epolicies",
        data=json.dumps(policy.model_dump(mode="json")).encode(),
        headers={"X-API-Key": SALES_KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202, response.status


def _end_to_end(n: int, tmp: Path) -> float:
    """Seconds from the first of n policies posted at once (8 clients) to `imaging up` until the last
    one's mail is in the outbox, after two warm-up policies."""
    from supervisor import free_port

    data = tmp / "up"
    data.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGING_")}
    env.update(
        {"IMAGING_DATA_DIR": str(data), "IMAGING_API_KEYS": f"{SALES_KEY}:sales", "PYTHONPATH": str(ROOT)}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "up", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base, outbox = f"http://127.0.0.1:{port}", data / "outbox"

    def mails() -> int:
        return len(list(outbox.glob("*.eml"))) if outbox.exists() else 0

    def wait_for(count: int, limit: float) -> None:
        deadline = time.monotonic() + limit
        while mails() < count:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"imaging up: {mails()} of {count} mails after {limit} s")
            time.sleep(0.02)

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for policy in _policies(2, "W2026"):
            _post(base, policy)
        wait_for(2, 120)
        pending = list(_policies(n, "E2026"))
        lock = threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    policy = pending.pop()
                _post(base, policy)

        began = time.perf_counter()
        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        wait_for(n + 2, 600)
        return time.perf_counter() - began
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=30)
    parser.add_argument("--up", type=int, default=0, help="policies to post at once to `imaging up`")
    parser.add_argument("--cli", action="store_true", help="also time pyHanko's command line (slow)")
    parser.add_argument("--long-term", action="store_true", help="also B-LT and B-LTA against certomancer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = init_test_keys(Path(tmp) / "keys")
        passphrase = paths["passphrase"].read_bytes()
        store = LocalStore(Path(tmp) / "objects")
        cached, plain = sign.load_pkcs12(paths["pkcs12"], passphrase), _plain_pkcs12(paths)
        policies = _policies(args.policies)
        _run(policies[:2], store, lambda: cached, _seal_now())  # warm up fonts and imports
        _run(policies[:2], store, lambda: plain, _seal_before(True))
        rows = {
            "before (as up to 92361d7: pyHanko's attributes, encrypt, reopen, sign)": _run(
                policies, store, lambda: plain, _seal_before(True)
            ),
            "as the worker does it": _run(policies, store, lambda: cached, _seal_now()),
            "naive (before, and the key opened and the size found by a dry run per policy)": _run(
                policies, store, lambda: _plain_pkcs12(paths), _seal_before(False)
            ),
        }
        if args.long_term:
            rows.update(_long_term(policies[:10], store, Path(tmp) / "ca"))
        if args.cli:
            rows["one certified copy, pyHanko's command line per policy"] = _one_copy_cli(
                policies, paths["pkcs12"], paths["passphrase"], Path(tmp)
            )
        rows["request to stored PDF through the API, queue and one worker"] = _through_the_service(
            args.policies, Path(tmp) / "service"
        )
        end_to_end = _end_to_end(args.up, Path(tmp)) if args.up else None
    before, after = (statistics.median(rows[k]) for k in list(rows)[:2])
    print(f"{args.policies} e-policies, one core; as the worker does it / before: {before / after:.2f}x\n")
    print("| method | policies/s | p50 | p95 |")
    print("|---|---:|---:|---:|")
    for label, times in rows.items():
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"| {label} | {len(times) / sum(times):.1f} | {statistics.median(times) * 1000:.0f} ms "
              f"| {p95 * 1000:.0f} ms |")  # fmt: skip
    if end_to_end is not None:
        print(f"\n`imaging up` (two workers): {args.up} policies posted at once, every mail sent after "
              f"{end_to_end:.1f} s: {args.up / end_to_end:.1f} policies/s")  # fmt: skip


if __name__ == "__main__":
    main()
