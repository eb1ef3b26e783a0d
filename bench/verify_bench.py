"""What one check of a signed PDF costs, in-process and through `imaging verify`.

    .venv/bin/python bench/verify_bench.py [--checks 20]

An e-policy is signed with fresh test keys (archive and customer's copy); each is checked ``--checks``
times after one warm-up, then pyHanko's PAdES-LTA test file (tests/data/pyhanko/) at its own clock;
then `imaging verify --json` once per copy as a child process (its start included), as a person runs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esign.epolicy import sample_request  # noqa: E402
from esign.keys import init_test_keys  # noqa: E402
from esign.render import render  # noqa: E402
from esign.sign import load_pkcs12, seal  # noqa: E402
from esign.verify import load_roots, verify  # noqa: E402

PASSWORD = "150013"
LTA = ROOT / "tests" / "data" / "pyhanko" / "pades-lta-dss-indirect-arrs-test.pdf"


def mean_ms(check, count: int) -> float:
    """Return the mean milliseconds of ``check()`` over ``count`` runs, after one warm-up."""
    check()
    start = time.perf_counter()
    for _ in range(count):
        check()
    return (time.perf_counter() - start) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=20)
    count = parser.parse_args().checks
    keys = Path(tempfile.mkdtemp())
    paths = init_test_keys(keys)
    signer = load_pkcs12(paths["pkcs12"], paths["passphrase"].read_bytes())
    copies = seal(render(sample_request(), 1, "https://x/verify"), signer, PASSWORD, "owner")
    roots = load_roots(paths["ca"])
    lta_roots = load_roots(LTA.parent / "root.cert.pem")
    clock = datetime(2020, 11, 1, tzinfo=UTC)
    rows = [
        ("archive copy, in-process", mean_ms(lambda: verify(copies.archive, roots), count)),
        (
            "customer's encrypted copy, in-process",
            mean_ms(lambda: verify(copies.customer, roots, PASSWORD), count),
        ),
        (
            "pyHanko's PAdES-LTA file, in-process",
            mean_ms(lambda: verify(LTA.read_bytes(), lta_roots, moment=clock), count),
        ),
    ]
    (keys / "a.pdf").write_bytes(copies.archive)
    command = [
        sys.executable,
        "-m",
        "cli",
        "verify",
        str(keys / "a.pdf"),
        "--roots",
        str(paths["ca"]),
        "--json",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    rows.append(
        ("archive copy, `imaging verify --json` (a new process)", (time.perf_counter() - start) * 1000)
    )
    print("| check | ms |\n| --- | ---: |")
    for what, ms in rows:
        print(f"| {what} | {ms:.0f} |")


if __name__ == "__main__":
    main()
