"""What one directory sign-in costs: ``people.directory.authenticate`` against a private OpenLDAP slapd.

    .venv/bin/python bench/directory_bench.py [--rounds 300]

Starts the tests' slapd (tests/people/conftest.py: a few people and groups, memberof overlay, a test CA)
on loopback and times ``--rounds`` sign-ins of one person in each way a deployment finds people and
groups (a service account's search and a group search; an anonymous search and memberOf; a DN template),
over plain LDAP, StartTLS and LDAPS, and a refused one (wrong password). The baseline, measured in the
same run, is the least a sign-in can cost: a new connection, one bind, unbind (ldap3, plain LDAP). Prints
a Markdown table: p50 and p95 in milliseconds and p50 against the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ldap3 import NONE, Connection, Server  # noqa: E402

from people.directory import authenticate  # noqa: E402
from tests.people.conftest import PEOPLE, Slapd, directory_settings, password_of  # noqa: E402


def _times(call: Callable[[], object], rounds: int) -> list[float]:
    """Return the milliseconds of each of rounds calls, after a few unmeasured ones."""
    for _ in range(5):
        call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _bare_bind(server: Slapd) -> None:
    conn = Connection(Server(server.url, get_info=NONE), f"uid=alice,{PEOPLE}", password_of("alice"))
    assert conn.bind()
    conn.unbind()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        server = Slapd(Path(tmp))
        server.start()
        try:
            tls = {"ldap_ca_file": server.ca_file}
            scenarios = {
                "search (service account, group search), plain": directory_settings(server, "search"),
                "search, StartTLS": directory_settings(server, "search", ldap_starttls=True, **tls),
                "search, LDAPS": directory_settings(server, "search", ldap_url=server.ldaps_url, **tls),
                "anonymous search, memberOf, plain": directory_settings(server, "memberof"),
                "DN template, group search as the person, plain": directory_settings(server, "template"),
            }
            rows = [("baseline: connect, bind, unbind (plain)", _times(lambda: _bare_bind(server), rounds))]
            for name, settings in scenarios.items():
                assert authenticate(settings, "alice", password_of("alice")) is not None, name
                rows.append(
                    (name, _times(lambda s=settings: authenticate(s, "alice", password_of("alice")), rounds))
                )
            wrong = scenarios["search (service account, group search), plain"]
            assert authenticate(wrong, "alice", "wrong") is None
            rows.append(
                (
                    "search, wrong password (refused)",
                    _times(lambda: authenticate(wrong, "alice", "no"), rounds),
                )
            )
        finally:
            server.stop()
    baseline = statistics.median(rows[0][1])
    print(f"{rounds} sign-ins each, one process, loopback\n")
    print("| sign-in | p50 ms | p95 ms | p50 / baseline |\n| --- | --- | --- | --- |")
    for name, times in rows:
        p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p50 / baseline:.1f} |")


if __name__ == "__main__":
    main()
