"""Real servers for the tests, each on free loopback ports in a temporary directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from supervisor import free_port


def wait_until(check, seconds: float, what: str, interval: float = 0.1):
    """Return check()'s first truthy value, polling; fail the test after seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def tls_files(directory: Path, ca_name: str) -> tuple[Path, Path, Path]:
    """Return a CA certificate and a server certificate (for 127.0.0.1 and localhost) and key, written as PEM
    files in directory; valid for a day."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])

    def cert(subject, public_key, extensions):
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        builder = builder.public_key(public_key).serial_number(x509.random_serial_number())
        builder = builder.not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(ca_key, hashes.SHA256())

    ca = cert(issuer, ca_key.public_key(), [(x509.BasicConstraints(ca=True, path_length=None), True)])
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
        key.public_key(),
        [(x509.SubjectAlternativeName(names), False)],
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class RedisServer:
    port: int
    directory: Path
    proc: subprocess.Popen | None = None
    appendonly: bool = False  # on: what was queued survives a stop and start on the same directory

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--daemonize", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: _answers(self.port, b"PING\r\n", b"+PONG"), 15, "redis-server")

    def stop(self) -> None:
        if self.proc:
            _stop_group(self.proc)


def _answers(port: int, request: bytes, prefix: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(request)
            return s.recv(64).startswith(prefix)
    except OSError:
        return False


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def weed_port() -> int:
    """Return a free port p whose p+10000 is free too: weed puts each gRPC port 10000 above its HTTP port."""
    import random

    for _ in range(200):
        port = random.randint(20000, 45000)
        if all(_bindable(p) for p in (port, port + 10000)):
            return port
    raise AssertionError("no free port pair for SeaweedFS")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class S3Server:
    """SeaweedFS (`weed server -s3`), which speaks the same S3 API as MinIO."""

    directory: Path
    port: int = field(default_factory=weed_port)
    proc: subprocess.Popen | None = None
    # Kept, so that a stop and a start (an outage) bring back the same server on the same ports.
    ports: dict[str, int] = field(
        default_factory=lambda: {p: weed_port() for p in ("master", "volume", "filer")}
    )

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        weed = Path(sys.executable).with_name("weed")
        ports = self.ports
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "weed.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(weed), "server", f"-dir={self.directory}", "-s3", f"-s3.port={self.port}",
                f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
                f"-filer.port={ports['filer']}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.volumeSizeLimitMB=64", "-volume.max=0",
                # Off: their fixed default ports (8181, 9101) clash when two SeaweedFS servers run at once.
                "-s3.port.iceberg=0", "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SSE-S3 (IMAGING_S3_SSE=s3) needs the server's key-encryption key: 256 bits in hex.
            env={**os.environ, "WEED_S3_SSE_KEK": "5e" * 32},
        )  # fmt: skip
        wait_until(
            self._ready, 60, f"SeaweedFS S3 on port {self.port} (log: {self.directory / 'weed.log'})", 0.25
        )

    def _ready(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(
                f"weed exited with {self.proc.returncode}; see {self.directory / 'weed.log'}"
            )
        try:
            urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True  # an S3 error document is an answer
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc:
            _stop_group(self.proc, grace=2)  # weed takes ~10 s to stop politely; its data is throwaway


@dataclass
class MailServer:
    """aiosmtpd on loopback; every message it accepts lands in ``messages``."""

    port: int = field(default_factory=free_port)
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered with 550
    controller: object | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None
