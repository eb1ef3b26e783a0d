"""A batch capture gives way to an immediate one (queues.give_way, taking_turns): between its pages and
documents it waits while an immediate scan is being captured on the same machine, for at most the time
it is allowed; a mark its job left behind lapses. Real Redis."""

from __future__ import annotations

import socket
import threading
import time

import queues


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
