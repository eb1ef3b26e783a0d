"""The deployment guide's files and shape (docs/deploy.md): systemd units that verify and give the warm
shutdown its time, `imaging worker --processes N`, the service as separate processes in production mode,
and a backup restored into an empty Redis and bucket."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from cli import imaging
from settings import Settings
from tests.conftest import ROOT, settings_env
from tests.servers import wait_until

UNITS = ROOT / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_the_systemd_units_verify_and_run_commands_that_exist(tmp_path: Path) -> None:
    imaging_bin = Path(sys.executable).with_name("imaging")
    for unit in ("imaging-api.service", "imaging-worker@.service"):
        text = (UNITS / unit).read_text().replace("/opt/imaging/.venv/bin/imaging", str(imaging_bin))
        (tmp_path / unit.replace("@.", "@1.")).write_text(text)
        checked = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit.replace("@.", "@1."))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
        command = _unit(unit)["Service"]["ExecStart"].split()[1:]
        args = [a.replace("%H", "host").replace("%i", "1") for a in command]
        imaging.commands[args[0]].make_context(args[0], args[1:])  # raises on an unknown option or value


def test_the_worker_unit_gives_the_warm_shutdown_the_job_timeout() -> None:
    service = _unit("imaging-worker@.service")["Service"]
    assert int(service["TimeoutStopSec"]) > Settings().job_timeout
    assert service["KillMode"] == "mixed", "SIGTERM to the worker alone: it finishes its job in hand"
    assert "--name %H-%i" in service["ExecStart"]


def test_processes_runs_named_workers_and_starts_again_one_that_dies(settings: Settings) -> None:
    conn = Redis.from_url(settings.redis_url)

    def live() -> dict[str, int]:
        return {w.name: w.pid for w in Worker.all(connection=conn) if w.death_date is None}

    parent = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--processes", "2", "--name", "hostx"],
        env=settings_env(settings),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: {"hostx-1", "hostx-2"} <= set(live()), 120, "two workers named hostx-1, hostx-2")
        first = live()["hostx-1"]
        time.sleep(3)  # past RQ's start-up, when its signal handlers are in place
        os.kill(first, signal.SIGKILL)  # a crash
        wait_until(lambda: live().get("hostx-1") not in (None, first), 120, "hostx-1 started again")
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(90)
    assert parent.returncode == 0
    wait_until(lambda: not live(), 30, "every worker to end its registration")
