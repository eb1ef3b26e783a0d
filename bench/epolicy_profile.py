"""Where an e-policy's time goes through the service, phase by phase, in one process on a real Redis.

    .venv/bin/python bench/epolicy_profile.py [--policies 20] [--top 40]

For each policy: ``POST /v1/epolicies`` (FastAPI's test client), then the ``issue_epolicy`` job called
as the worker calls it (render, seal, store, index, record, mail), then any ``deliver_mail`` job left in
the mail queue. Prints each phase's p50 (wall clock), its fsyncs and Redis commands per policy, and
cProfile's functions by cumulative time over all phases (the profiler's own cost inflates the times).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from epolicy_bench import SALES_KEY, _policies  # noqa: E402

FSYNCS = [0]
_fsync = os.fsync


def _counted_fsync(fd: int) -> None:
    FSYNCS[0] += 1
    _fsync(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=20)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    os.fsync = _counted_fsync
    from tests.servers import redis_server

    tmp = Path(tempfile.mkdtemp(prefix="epolicy-profile-"))
    with redis_server(tmp) as redis:
        os.environ.update(
            {
                "IMAGING_DATA_DIR": str(tmp / "var"),
                "IMAGING_REDIS_URL": redis.url,
                "IMAGING_API_KEYS": f"{SALES_KEY}:sales",
            }
        )
        from fastapi.testclient import TestClient
        from redis import Redis
        from rq import Queue

        import worker
        from api import create_app
        from esign.keys import init_test_keys
        from settings import load_settings
        from worker_process import preload

        settings = load_settings()
        init_test_keys(settings.keys_dir)
        preload(settings)
        client = TestClient(create_app(settings))
        conn = Redis.from_url(redis.url)
        mail_queue = Queue("mail", connection=conn)

        def post(policy) -> None:
            answer = client.post(
                "/v1/epolicies", json=policy.model_dump(mode="json"), headers={"X-API-Key": SALES_KEY}
            )
            assert answer.status_code == 202, answer.text

        def mail_jobs(policy) -> None:
            for job_id in mail_queue.get_job_ids():
                worker.deliver_mail(job_id.removeprefix("mail-"))
                mail_queue.remove(job_id)

        phases = {
            "POST /v1/epolicies": post,
            "issue_epolicy job": lambda p: worker.issue_epolicy(p.policy_no, 1),
            "deliver_mail jobs": mail_jobs,
        }
        times: dict[str, list[float]] = {name: [] for name in phases}
        fsyncs: dict[str, int] = dict.fromkeys(phases, 0)
        profile = cProfile.Profile()
        for i, policy in enumerate(_policies(args.policies + 2)):
            if i == 2:  # the first two warm up
                conn.config_resetstat()
            for name, phase in phases.items():
                before, began = FSYNCS[0], time.perf_counter()
                if i >= 2:
                    profile.enable()
                phase(policy)
                if i >= 2:
                    profile.disable()
                    times[name].append(time.perf_counter() - began)
                    fsyncs[name] += FSYNCS[0] - before
        n = args.policies
        print("| phase | p50 | fsyncs per policy |\n|---|---:|---:|")
        for name in phases:
            print(f"| {name} | {statistics.median(times[name]) * 1000:.1f} ms | {fsyncs[name] / n:.1f} |")
        stats = conn.info("commandstats")
        calls = {k.removeprefix("cmdstat_"): v["calls"] / n for k, v in stats.items() if "resetstat" not in k}
        print(f"\nRedis commands per policy: {sum(calls.values()):.0f}:", end=" ")
        print(", ".join(f"{k} {v:.0f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
