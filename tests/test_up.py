"""`imaging up`: the whole service on the embedded default, started and stopped as an administrator would."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import urllib.request
from pathlib import Path

from supervisor import free_port
from tests.conftest import ROOT
from tests.samples import sample_png
from tests.servers import wait_until


def _children(pid: int) -> set[int]:
    """Return every descendant of pid."""
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            text = (task / "children").read_text() if (task / "children").exists() else ""
            for child in map(int, text.split()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _get(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def _scan_is_captured(base: str, key: str, what: str) -> None:
    """Upload a page in immediate mode and wait until it is captured."""
    request = urllib.request.Request(
        base + "/v1/scans?mode=immediate",
        data=sample_png(),
        headers={"X-API-Key": key, "Content-Type": "image/png"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        scan = json.loads(response.read())
    wait_until(lambda: _get(base + scan["status_url"], key)[1].get("status") == "captured", 90, what)


def _start(data_dir: Path, port: int, stderr=subprocess.DEVNULL, **settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGING_")}
    env.update({"IMAGING_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    env.update({f"IMAGING_{name.upper()}": value for name, value in settings.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "up", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=data_dir.parent,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def _smtp_answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _environment(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def test_imaging_up_serves_captures_and_stops_everything_it_started(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "var", free_port()
    base = f"http://127.0.0.1:{port}"
    scanner_key = "scanner-key-from-a-file-" + "f" * 16
    keys_file = tmp_path / "api.keys"
    keys_file.write_text(f"{scanner_key}:scanner\n")
    mailbox = free_port()
    proc = _start(data_dir, port, api_keys_file=str(keys_file), mailbox_port=str(mailbox))
    try:
        wait_until(lambda: _get(base + "/healthz")[0] == 200, 90, "imaging up to answer /healthz")
        wait_until(lambda: _smtp_answers(mailbox), 30, "the mail-in receiver to answer")
        children = _children(proc.pid)
        assert len(children) >= 6  # redis-server, two workers, an immediate-only worker, the API, the mailbox
        commands = [_command(pid) for pid in children]
        assert sum("--immediate-only" in c for c in commands) == 1, commands  # IMAGING_IMMEDIATE_WORKERS
        key_file = data_dir / "admin.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        _scan_is_captured(base, key, "the scan to be captured")  # the admin key from the file works
        _scan_is_captured(base, scanner_key, "the scan by the key from IMAGING_API_KEYS_FILE")
        # No API key travels in a child's environment (the API, the workers, their work horses, Redis).
        environments = {pid: _environment(pid) for pid in _children(proc.pid)}
        assert any(f"IMAGING_API_KEYS_FILE={keys_file}" in e for e in environments.values())
        leaked = [pid for pid, e in environments.items() if key in e or scanner_key in e]
        assert not leaked, f"an API key in the environment of {leaked}"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert f"imaging is up at {base}" in output
    assert f"admin API key: made in {key_file} (readable by this user only)" in output
    assert key not in output, "the admin key is never printed"
    assert "imaging stopped" in output
    wait_until(lambda: not any(_alive(pid) for pid in children), 10, "every started process to end")
    assert (data_dir / "redis" / "appendonlydir").is_dir()  # queued jobs persist across restarts


def test_imaging_up_refuses_a_port_in_use_with_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGING_")}
        env.update({"IMAGING_DATA_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)})
        result = subprocess.run(
            [sys.executable, "-m", "cli", "up", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"imaging: port {port} on 127.0.0.1 is in use: stop what holds it or choose another with --port"
    )


def _direct(pid: int, word: str) -> list[int]:
    """Return the children of pid whose command line holds word."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in map(int, (task / "children").read_text().split()):
            try:
                if word in Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(child)
            except FileNotFoundError:
                continue
    return [c for c in found if _alive(c)]


def test_imaging_up_starts_again_a_worker_or_redis_that_dies(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "var", free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "up.log").open("w")
    proc = _start(data_dir, port, log)
    try:
        # Until it says it is up, imaging up treats a dying child as a failed start and stops.
        for line in proc.stdout:
            if line.startswith("imaging is up"):
                break
        assert _get(base + "/healthz")[0] == 200
        key = (data_dir / "admin.key").read_text().strip()
        workers = _direct(proc.pid, " worker ")
        assert len(workers) == 3  # two, and one for immediate scans only
        (immediate,) = [pid for pid in workers if "--immediate-only" in _command(pid)]
        os.kill(immediate, signal.SIGKILL)
        replaced = lambda: len(set(_direct(proc.pid, " worker ")) - {immediate}) == 3  # noqa: E731
        try:
            wait_until(replaced, 30, "a new worker in its place")
        except AssertionError:
            log.flush()
            tail = (tmp_path / "up.log").read_text()[-3000:]
            raise AssertionError(f"children {_direct(proc.pid, '')}; imaging up said:\n{tail}") from None
        assert sum("--immediate-only" in _command(pid) for pid in _direct(proc.pid, " worker ")) == 1
        (redis,) = _direct(proc.pid, "redis-server")
        os.kill(redis, signal.SIGKILL)
        wait_until(lambda: _direct(proc.pid, "redis-server") not in ([], [redis]), 30, "a new redis-server")
        wait_until(lambda: _get(base + "/healthz")[0] == 200, 30, "the service to answer again")
        _scan_is_captured(base, key, "the workers to take work from the new Redis")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == 0
