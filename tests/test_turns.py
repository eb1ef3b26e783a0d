"""A batch capture gives way to an immediate one (queues.give_way, taking_turns): between its pages and
documents it waits while an immediate scan is being captured on the same machine, for at most the time
it is allowed; a mark its job left behind lapses. Real Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import queues
from settings import Settings
from tests.conftest import ROOT
from vocabulary import ScanMode


def test_a_batch_capture_waits_while_an_immediate_scan_runs_and_goes_on_when_it_ends(redis_conn) -> None:
    assert queues.give_way(redis_conn, 5) < 0.05  # nothing immediate running: no wait
    waited: list[float] = []
    with queues.immediate_running(redis_conn, "s20261130000000aaaaaaaaaaaa", 30):
        batch = threading.Thread(target=lambda: waited.append(queues.give_way(redis_conn, 5)))
        batch.start()
        time.sleep(0.4)
        assert batch.is_alive(), "the batch capture goes on while an immediate scan runs"
    batch.join(2)
    assert 0.35 < waited[0] < 1.5
    assert queues.give_way(redis_conn, 5) < 0.05


def test_a_batch_capture_waits_no_longer_than_allowed_and_a_lapsed_mark_holds_nothing(redis_conn) -> None:
    with queues.immediate_running(redis_conn, "s20261130000000bbbbbbbbbbbb", 30):
        assert 0.2 <= queues.give_way(redis_conn, 0.2) < 0.6
    # An immediate job that died without removing its mark: the mark lapses at its time.
    here = queues.IMMEDIATE_RUNNING.format(host=socket.gethostname())
    redis_conn.zadd(here, {"s20261130000000cccccccccccc": time.time() - 1})
    assert queues.give_way(redis_conn, 5) < 0.05
    # An immediate scan on another machine: its cores are not this one's.
    elsewhere = queues.IMMEDIATE_RUNNING.format(host="another-machine")
    redis_conn.zadd(elsewhere, {"s20261130000000dddddddddddd": time.time() + 30})
    assert queues.give_way(redis_conn, 5) < 0.05


def test_a_batch_capture_job_runs_niced_and_an_immediate_one_as_it_was(redis_conn, monkeypatch) -> None:
    monkeypatch.setattr(queues, "get_current_job", lambda: object())  # as in an RQ job's forked child
    settings = Settings(batch_nice=7)
    for mode in (ScanMode.immediate, ScanMode.batch):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # a job's child: what it changes about its process ends with it
            scan = SimpleNamespace(mode=mode, scan_id="s20261130000000eeeeeeeeeeee")
            before = os.nice(0)
            with queues.taking_turns(redis_conn, settings, scan):
                os.write(write, json.dumps([before, os.nice(0)]).encode())
            os._exit(0)
        os.close(write)
        nice, nice_in_job = json.loads(os.read(read, 100))
        os.close(read)
        os.waitpid(child, 0)
        assert nice_in_job == nice + (7 if mode == ScanMode.batch else 0)


def test_a_worker_that_takes_batch_scans_runs_opencv_on_one_thread_set_before_its_jobs_fork() -> None:
    # In a fresh process, as a worker starts; then a forked child (a job) uses OpenCV's threads freely.
    code = (
        "import os, cv2, numpy as np, worker_process; n = cv2.getNumThreads();"
        "worker_process.opencv_on_one_thread(); cv2.resize(np.zeros((2000, 2000), np.uint8), (999, 999));"
        "pid = os.fork();"
        "os._exit(0) if pid == 0 and cv2.resize(np.zeros((2000, 2000), np.uint8), (999, 999)) is not None "
        "else None;"
        "os.waitpid(pid, 0); print(n, cv2.getNumThreads())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert (before > 1 or os.cpu_count() == 1) and after == 1
