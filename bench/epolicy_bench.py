"""E-policies issued per second on one core: render + encrypt + sign two copies + store, two ways.

    .venv/bin/python bench/epolicy_bench.py [--policies 30]

*as the worker does it*: the key loaded once per process, the signature's size reserved up front;
*naive*: the PKCS#12 opened for every policy and pyHanko left to find the size by a dry run (the two
things the worker avoids). Both on the same generated policies, in one run, storing into a local store.
pyHanko's command line (`pyhanko-cli`) is not a dependency here, so it is not in the comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import esign.sign as sign  # noqa: E402
from esign.epolicy import sample_request  # noqa: E402
from esign.keys import init_test_keys  # noqa: E402
from esign.render import render  # noqa: E402
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
