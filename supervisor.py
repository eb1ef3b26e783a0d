"""``imaging up``: the whole service on the embedded default, in the foreground.

A private redis-server under the data dir, on a unix socket only the service's user can reach
(append-only file on, so queued jobs survive a restart),
the local object store, the API and the workers (and the mail-in receiver when IMAGING_MAILBOX_PORT is
set), each its own process. Ctrl-C or SIGTERM stops them
all, workers first (they finish the job in hand), then the API, then Redis.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from errors import ConfigError, DependencyDown
from settings import Settings

_PR_SET_PDEATHSIG = 1
MAX_RESTARTS = 5  # more deaths than this within RESTART_WINDOW seconds stop the service
RESTART_WINDOW = 60


try:  # looked up here, in the parent: a child between fork and exec should only make the call
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:
    _prctl = None


def _die_with_parent() -> None:
    """In the child: ask Linux to send SIGTERM if the supervisor itself dies (even by SIGKILL)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def make_admin_key(path: Path) -> bool:
    """Return whether the embedded admin key was made just now (first start) in ``path``, mode 0600."""
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return True


def start_redis(sock: Path) -> tuple[subprocess.Popen, str]:
    """Return the private redis-server process and its URL, once it answers. It listens on the unix
    socket ``sock`` only, in a directory only the service's user may enter: no TCP port, so no other
    local user can reach it (and queue a job naming any function for a worker to run)."""
    binary = shutil.which("redis-server")
    if not binary:
        raise ConfigError(
            "redis-server is not installed: run `make run` (installs it) or `apt-get install redis-server`, "
            "or set IMAGING_REDIS_URL to a Redis you run"
        )
    if len(str(sock).encode()) > 100:  # sun_path holds 108 bytes
        raise ConfigError(
            f"IMAGING_DATA_DIR: {sock.parent.parent} is too long a path for the private Redis's socket "
            f"({sock}); choose a shorter data directory"
        )
    sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock.parent.chmod(0o700)  # made by an earlier version with the default mode
    log = sock.parent / "redis.log"
    proc = subprocess.Popen(
        [
            binary,
            "--port", "0",  # no TCP at all
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(sock.parent),
            "--appendonly", "yes",  # queued jobs survive a Redis restart
            "--save", "",
            "--logfile", str(log),
            "--daemonize", "no",
        ],
        preexec_fn=_die_with_parent,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DependencyDown(f"redis-server exited at start; see {log}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(str(sock))
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"unix://{sock}?db=0"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise DependencyDown(f"redis-server did not answer within 15 s; see {log}")


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        env=env,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
    )


def _wait_healthy(url: str, procs: list[subprocess.Popen], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise DependencyDown(
                    f"{' '.join(proc.args[3:5])} exited at start with code {proc.returncode}"
                )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise DependencyDown(f"the API did not answer {url}/healthz within {seconds:.0f} s")


def _what(proc: subprocess.Popen) -> str:  # "api --host", "worker --name", "mailbox"
    args = [str(a) for a in proc.args]
    return "redis-server" if "redis" in Path(args[0]).name else " ".join(args[3:5])


def _stop(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _prepare(settings: Settings, data_dir: Path, host: str, port: int) -> bool:
    """Return whether the admin key is new, after making the data dir (only the service's user may read
    it: it holds OCR's readings, keys and mail), checking the port is free and, when no signing key is
    configured, making the test signing keys."""
    os.umask(0o077)  # every file and directory the service and its children make: 0600 and 0700
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if not _port_is_free(host, port):
        raise ConfigError(
            f"port {port} on {host} is in use: stop what holds it or choose another with --port"
        )
    first = make_admin_key(data_dir / settings.admin_key_path.name)
    if not settings.pkcs11_module and settings.signing_pkcs12 is None and not settings.pkcs12_path.exists():
        from esign.keys import init_test_keys

        init_test_keys(data_dir / "keys")  # the embedded default signs with a clearly marked test key
        print(f"made TEST signing keys under {data_dir / 'keys'} (replace them for production)", flush=True)
    return first


def _announce(url: str, key_path: Path, first: bool) -> None:
    # Where the key is, never the key: what `imaging up` prints ends up in terminals' scrollback, journald
    # and CI logs, which more people read than the data dir's owner.
    print(f"imaging is up at {url}  (API docs: {url}/docs)", flush=True)
    made = "made in" if first else "in"
    print(f"admin API key: {made} {key_path} (readable by this user only)", flush=True)
    print("staff sign in at /login: imaging users add NAME --role ROLE --branch CODE", flush=True)
    print("press Ctrl-C to stop", flush=True)


def _worker_commands(settings: Settings, workers: int) -> list[list[str]]:
    """Return the `imaging worker` commands `imaging up` runs: `workers` on every queue, and the workers
    that take only immediate scans (IMAGING_IMMEDIATE_WORKERS): free when a customer at the counter
    comes while the others hold batch jobs, which run niced and give way (queues.taking_turns)."""
    base = f"{socket.gethostname()}-{os.getpid()}"
    every = [["worker", "--name", f"{base}-{i}"] for i in range(workers)]
    only = [
        ["worker", "--name", f"{base}-i{i}", "--immediate-only"] for i in range(settings.immediate_workers)
    ]
    return every + only


def up(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """Run the service until Ctrl-C or SIGTERM; return the exit code."""
    data_dir = settings.data_dir.resolve()
    first = _prepare(settings, data_dir, host, port)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    redis_proc = None
    redis_url = settings.redis_url
    if not redis_url:
        redis_proc, redis_url = start_redis(settings.redis_socket)
    # No key in the children's environment: they read the admin key from the data dir (settings.py).
    env = {
        **os.environ,
        "IMAGING_DATA_DIR": str(data_dir),
        "IMAGING_REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
    }
    commands = _worker_commands(settings, workers)
    worker_procs = [_spawn(c, env) for c in commands]
    api_proc = _spawn(["api", "--host", host, "--port", str(port)], env)
    mailbox_proc = _spawn(["mailbox"], env) if settings.mailbox_port or settings.mailbox_imap_url else None
    url = f"http://{host}:{port}"
    code = 0
    deaths: list[float] = []
    restarts = 0
    try:
        _wait_healthy(url, [*worker_procs, api_proc])
        _announce(url, data_dir / settings.admin_key_path.name, first)
        while not stopping:
            # A process that dies is started again (a worker's job is retried by RQ, see worker.py);
            # one that keeps dying stops the service rather than spinning.
            procs = [*worker_procs, api_proc, redis_proc, mailbox_proc]
            dead = [p for p in procs if p is not None and p.poll() is not None]
            if dead:
                now = time.monotonic()
                deaths = [t for t in deaths if now - t < RESTART_WINDOW] + [now] * len(dead)
                restarts += len(dead)
                if len(deaths) > MAX_RESTARTS:
                    print(
                        f"imaging: {len(deaths)} service processes died within {RESTART_WINDOW} s; stopping",
                        file=sys.stderr,
                    )
                    code = 1
                    break
            for proc in dead:
                print(
                    f"imaging: {_what(proc)} exited with code {proc.returncode}; starting it again",
                    file=sys.stderr,
                )
                if proc is redis_proc:
                    redis_proc, _ = start_redis(settings.redis_socket)
                elif proc is api_proc:
                    api_proc = _spawn(["api", "--host", host, "--port", str(port)], env)
                elif proc is mailbox_proc:
                    mailbox_proc = _spawn(["mailbox"], env)
                else:
                    i = worker_procs.index(proc)
                    name = commands[i][2]
                    commands[i][2] = f"{name.split('.')[0]}.{restarts}"  # the dead one's name may linger
                    worker_procs[i] = _spawn(commands[i], env)
            time.sleep(0.2)
    except DependencyDown as exc:
        print(f"imaging: {exc.message}", file=sys.stderr)
        code = 3
    finally:
        _stop([p for p in [mailbox_proc] if p is not None])  # no new mail while the rest stops
        _stop(worker_procs)
        _stop([api_proc])
        if redis_proc:
            _stop([redis_proc])
    if code == 0:
        print("imaging stopped", flush=True)
    return code


def workers(settings: Settings, *, name: str, processes: int, metrics_port: int = 0) -> int:
    """Run ``processes`` workers on this machine, named ``<name>-1``... (each with its metrics port
    ``metrics_port + i`` if given), until SIGTERM or Ctrl-C; a worker that dies is started again under
    its name (worker.py ends its dead namesake's registration). Stopping waits for each job in hand
    (up to IMAGING_JOB_TIMEOUT): the unit's stop timeout must allow that."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start(i: int) -> subprocess.Popen:
        port = ["--metrics-port", str(metrics_port + i)] if metrics_port else []
        return _spawn(["worker", "--name", f"{name}-{i}", *port], env)

    procs = {i: start(i) for i in range(1, processes + 1)}
    deaths: list[float] = []
    while not stopping:
        for i, proc in list(procs.items()):
            if proc.poll() is None or stopping:
                continue
            now = time.monotonic()
            deaths = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
            if len(deaths) > MAX_RESTARTS:
                print(
                    f"imaging: workers died {len(deaths)} times within {RESTART_WINDOW} s; stopping",
                    file=sys.stderr,
                )
                _stop(list(procs.values()), settings.job_timeout + 30)
                return 1
            print(
                f"imaging: worker {name}-{i} exited with code {proc.returncode}; starting it again",
                file=sys.stderr,
            )
            procs[i] = start(i)
        time.sleep(0.2)
    for proc in procs.values():  # all at once: each finishes its job in hand
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    _stop(list(procs.values()), settings.job_timeout + 30)
    return 0
