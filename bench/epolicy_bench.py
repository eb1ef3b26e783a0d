"""E-policies issued per second on one core: render + encrypt + sign two copies + store, two ways.

    .venv/bin/python bench/epolicy_bench.py [--policies 30]

*as the worker does it*: the key loaded once per process, the signature's size reserved up front;
*naive*: the PKCS#12 opened for every policy and pyHanko left to find the size by a dry run (the two
things the worker avoids). Both on the same generated policies, in one run, storing into a local store.
Then one certified copy per policy (the archive copy, no encryption) in-process against pyHanko's
command line run once per policy (`pyhanko sign addsig --certify --use-pades pkcs12`), which loads
Python, pyHanko and the key every time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import esign.sign as sign  # noqa: E402
from esign.epolicy import sample_request  # noqa: E402
from esign.keys import init_test_keys  # noqa: E402
from esign.render import SEAL_BOX, render  # noqa: E402
from storage import LocalStore  # noqa: E402


def _policies(n: int):
    base = sample_request()
    return [base.model_copy(update={"policy_no": f"P2026{i:09d}"}) for i in range(n)]


def _run(policies, store: LocalStore, get_signer, reserve: bool) -> list[float]:
    times = []
    for policy in policies:
        began = time.perf_counter()
        pdf = render(policy, 1, f"https://epolicy.example.com/verify/{policy.policy_no}")
        copies = sign.seal(pdf, get_signer(), "150013", "owner", reserve=reserve)
        store.put(f"epolicies/{policy.policy_no}/v1.pdf", copies.customer, "application/pdf")
        store.put(f"epolicies/{policy.policy_no}/v1.archive.pdf", copies.archive, "application/pdf")
        times.append(time.perf_counter() - began)
    return times


def _one_copy_in_process(policies, signer) -> list[float]:
    times = []
    for policy in policies:
        began = time.perf_counter()
        sign.certify(render(policy, 1, f"https://epolicy.example.com/verify/{policy.policy_no}"), signer)
        times.append(time.perf_counter() - began)
    return times


def _one_copy_cli(policies, pkcs12: Path, passfile: Path, tmp: Path) -> list[float]:
    pyhanko = Path(sys.executable).with_name("pyhanko")
    box = "1/" + ",".join(str(round(v)) for v in SEAL_BOX) + "/" + sign.FIELD
    times = []
    for policy in policies:
        began = time.perf_counter()
        (tmp / "in.pdf").write_bytes(
            render(policy, 1, f"https://epolicy.example.com/verify/{policy.policy_no}")
        )
        subprocess.run(
            [str(pyhanko), "sign", "addsig", "--field", box, "--certify", "--use-pades", "pkcs12",
             "--passfile", str(passfile), str(tmp / "in.pdf"), str(tmp / "out.pdf"), str(pkcs12)],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - began)
    return times


def _through_the_service(n: int, tmp: Path) -> list[float]:
    """Seconds from POST /v1/epolicies to the stored customer PDF, one request at a time, on a real
    Redis, a local store and one `imaging worker` process."""
    from fastapi.testclient import TestClient

    from api import create_app
    from settings import Settings
    from tests.conftest import running_workers
    from tests.servers import redis_server

    key = "bench-sales-key-" + "s" * 16
    tmp.mkdir(parents=True, exist_ok=True)
    with redis_server(tmp) as redis:
        settings = Settings(data_dir=tmp / "var", redis_url=redis.url, api_keys=f"{key}:sales")
        init_test_keys(settings.keys_dir)
        client = TestClient(create_app(settings))
        store = LocalStore(settings.objects_dir)
        times = []
        with running_workers(settings, 1, tmp / "workers"):
            for i, policy in enumerate(_policies(n + 2)):
                began = time.perf_counter()
                response = client.post(
                    "/v1/epolicies", json=policy.model_dump(mode="json"), headers={"X-API-Key": key}
                )
                assert response.status_code == 202, response.text
                while not store.exists(f"epolicies/{policy.policy_no}/v1.pdf"):
                    time.sleep(0.005)
                if i >= 2:  # the first two warm the worker up
                    times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = init_test_keys(Path(tmp) / "keys")
        passphrase = paths["passphrase"].read_bytes()
        store = LocalStore(Path(tmp) / "objects")
        cached = sign.load_pkcs12(paths["pkcs12"], passphrase)
        policies = _policies(args.policies)
        _run(policies[:2], store, lambda: cached, True)  # warm up fonts and imports
        rows = {
            "as the worker does it (key once, size reserved)": _run(policies, store, lambda: cached, True),
            "naive (key per policy, dry run for the size)": _run(
                policies, store, lambda: sign.load_pkcs12(paths["pkcs12"], passphrase), False
            ),
            "one certified copy, in-process (key once)": _one_copy_in_process(policies, cached),
            "one certified copy, pyHanko's command line per policy": _one_copy_cli(
                policies, paths["pkcs12"], paths["passphrase"], Path(tmp)
            ),
            "request to stored PDF through the API, queue and one worker": _through_the_service(
                args.policies, Path(tmp) / "service"
            ),
        }
    print(f"{args.policies} e-policies, one core\n")
    print("| method | policies/s | p50 | p95 |")
    print("|---|---:|---:|---:|")
    for label, times in rows.items():
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"| {label} | {len(times) / sum(times):.1f} | {statistics.median(times) * 1000:.0f} ms "
              f"| {p95 * 1000:.0f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
