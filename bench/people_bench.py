"""What people cost: the password hash, sign-in under load, and requests per second with a session or a
token against a bootstrap key, through a real `imaging api` process, Redis and the local store.

    .venv/bin/python bench/people_bench.py --clients 8 --seconds 10

1. argon2id verify in this process (the library's defaults), against SHA-256 of a token (what a token
   check hashes);
2. sign-in (`POST /login`) with one client, then with ``--clients`` at once: p50, p95, sign-ins a second;
3. `GET /v1/documents?policy_no=` (an index lookup: one listing) with ``--clients`` at once for
   ``--seconds`` each, as a bootstrap key, a session and a personal token, ``--rounds`` times in turn:
   requests a second, p50 (medians of the rounds), and the ratio to the key's.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from redis import Redis  # noqa: E402

from people import accounts, changes  # noqa: E402
from people.tokens import TokenKind  # noqa: E402
from roles import Role  # noqa: E402
from settings import Settings  # noqa: E402
from storage import open_store  # noqa: E402
from tests.conftest import running_api  # noqa: E402
from tests.servers import redis_server  # noqa: E402

KEY = "bench-underwriter-key-" + "u" * 16
PASSWORD = "a bench password"
LOOKUP = "/v1/documents?policy_no=TB2026001234"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def hash_costs(rounds: int = 30) -> dict[str, float]:
    account = accounts.HASHER.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        accounts.HASHER.verify(account, PASSWORD)
        times.append(time.perf_counter() - start)
    token = "imt_0123456789ab_" + "x" * 44
    start = time.perf_counter()
    for _ in range(10_000):
        hashlib.sha256(token.encode()).hexdigest()
    sha = (time.perf_counter() - start) / 10_000
    return {"argon2_ms": statistics.median(times) * 1000, "sha256_us": sha * 1e6}


def sign_in_once(client: httpx.Client, username: str) -> float:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    start = time.perf_counter()
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    elapsed = time.perf_counter() - start
    assert answer.status_code == 303, answer.text
    return elapsed


def sign_ins(url: str, users: list[str], per_client: int) -> tuple[list[float], float]:
    """Return every sign-in's time and the wall time, each user signing in per_client times at once."""
    times: list[float] = []
    lock = threading.Lock()

    def run(username: str) -> None:
        with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client:
            for _ in range(per_client):
                elapsed = sign_in_once(client, username)
                client.cookies.clear()
                with lock:
                    times.append(elapsed)

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, time.perf_counter() - start


def throughput(url: str, clients: list[httpx.Client], seconds: float) -> tuple[float, float]:
    """Return requests a second and the median latency of the lookup, every client at once."""
    times: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(client: httpx.Client) -> None:
        mine = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            answer = client.get(LOOKUP)
            mine.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(times) / (time.perf_counter() - start), statistics.median(times)


def _clients(url: str, n: int, how: str, users: list[str], tokens: list[str]) -> list[httpx.Client]:
    made = []
    for i in range(n):
        client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
        if how == "key":
            client.headers["X-API-Key"] = KEY
        elif how == "token":
            client.headers["X-API-Key"] = tokens[i % len(tokens)]
        else:
            sign_in_once(client, users[i % len(users)])
        made.append(client)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--signins", type=int, default=5, help="sign-ins per client under load")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three ways in, interleaved")
    args = parser.parse_args()
    costs = hash_costs()
    print(f"argon2id verify p50 {costs['argon2_ms']:.1f} ms; SHA-256 of a token {costs['sha256_us']:.2f} us")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis:
        settings = Settings(data_dir=Path(tmp) / "var", redis_url=redis.url, api_keys=f"{KEY}:underwriter")
        store, conn = open_store(settings), Redis.from_url(redis.url)
        users = [f"bench.{i}" for i in range(args.clients)]
        tokens = []
        for username in users:
            changes.add_user(store, conn, "bench", username, username, [Role.underwriter], "86", PASSWORD)
            secret, _ = changes.add_token(
                store, conn, "bench", kind=TokenKind.personal, owner=username, roles=[Role.underwriter],
                branch=None, days=1,
            )  # fmt: skip
            tokens.append(secret)
        with running_api(settings) as url:
            alone, _ = sign_ins(url, users[:1], 10)
            loaded, wall = sign_ins(url, users, args.signins)
            print(
                f"sign-in alone p50 {statistics.median(alone) * 1000:.0f} ms; "
                f"with {args.clients} clients at once "
                f"p50 {statistics.median(loaded) * 1000:.0f} ms, p95 {_pct(loaded, 95) * 1000:.0f} ms, "
                f"{len(loaded) / wall:.1f} sign-ins/s"
            )
            # Interleaved rounds, each way in turn, so a change in the machine's load falls on all three.
            runs: dict[str, list[tuple[float, float]]] = {"key": [], "session": [], "token": []}
            for _ in range(args.rounds):
                for how in runs:
                    clients = _clients(url, args.clients, how, users, tokens)
                    runs[how].append(throughput(url, clients, args.seconds))
                    for c in clients:
                        c.close()
            results = {
                how: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
                for how, rs in runs.items()
            }
            for how, (rps, p50) in results.items():
                ratio = rps / results["key"][0]
                print(
                    f"{LOOKUP} as {how}: {rps:.0f} requests/s, p50 {p50 * 1000:.1f} ms "
                    f"({ratio:.2f} of the key's)"
                )


if __name__ == "__main__":
    main()
