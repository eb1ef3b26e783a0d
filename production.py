"""Production refuses to guess: start-up checks that fail with one line naming the setting.

Every local fallback of the embedded default is an error here (Redis, the store, the outbox, the
public URL, secrets made per machine), and so are plain S3 and a TEST signing key or root.

At start-up they also check that the parts answer (``check_parts``): Redis, the store, and the signing
key opens (a PKCS#11 token in a child process: a session opened before RQ forks would not survive it).

The embedded default (``imaging up``) may fall back to local parts and signs with a TEST key; a
deployment with ``IMAGING_ENV=production`` may not. The API and every worker run these checks before
they take a request or a job.
"""

from __future__ import annotations

import multiprocessing
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from redis import Redis
from redis.exceptions import RedisError

from errors import ConfigError, DependencyDown
from esign.keys import TEST_MARK
from settings import Settings, masked_url, parse_webhooks
from storage import ObjectStore


def _subjects_in_pem(path) -> list[str]:
    return [cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(path.read_bytes())]


def signing_subject(settings: Settings) -> tuple[str, str]:
    """Return the signing certificate's subject and the setting it comes from."""
    if settings.pkcs11_module:
        if settings.pkcs11_cert is None:
            raise ConfigError("IMAGING_PKCS11_CERT: production needs the HSM key's certificate file")
        data = settings.pkcs11_cert.read_bytes()
        cert = (
            x509.load_pem_x509_certificate(data) if b"BEGIN" in data else x509.load_der_x509_certificate(data)
        )
        return cert.subject.rfc4514_string(), "IMAGING_PKCS11_CERT"
    try:
        _, cert, _ = pkcs12.load_key_and_certificates(
            settings.pkcs12_path.read_bytes(), settings.pkcs12_passphrase()
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"IMAGING_SIGNING_PKCS12: cannot open {settings.pkcs12_path}: {exc}") from None
    return cert.subject.rfc4514_string(), "IMAGING_SIGNING_PKCS12"


def check(settings: Settings) -> None:
    """Raise ConfigError naming the first setting production may not leave as it is; in the embedded
    default, do nothing."""
    if settings.env != "production":
        return
    for _event, url in parse_webhooks(settings.webhooks):
        if urlsplit(url).scheme != "https":  # the values carry names and ID numbers
            raise ConfigError(f"IMAGING_WEBHOOKS: {url} is plain HTTP; production sends values by https")
    for variable, given, fallback in (
        ("IMAGING_REDIS_URL", settings.redis_url, "a private Redis on one machine"),
        ("IMAGING_SMTP_HOST", settings.smtp_host, "mail written to a local outbox and marked sent"),
        ("IMAGING_PUBLIC_URL", settings.public_url, f"links and QR codes to {settings.base_url}"),
    ):
        if not given:
            raise ConfigError(f"{variable}: not set; production does not fall back to {fallback}")
    if not settings.s3_endpoint:
        raise ConfigError("IMAGING_S3_ENDPOINT: production keeps objects in the shared S3 store; set it")
    if not settings.s3_secure:
        raise ConfigError("IMAGING_S3_SECURE: production talks to S3 over TLS only; set it to true")
    for name, value in (("INDEX_SECRET", settings.index_secret), ("TOKEN_SECRET", settings.token_secret)):
        if value is None:  # each machine would make its own under its keys dir: links and lookups break
            raise ConfigError(f"IMAGING_{name}: production shares one secret across machines; set it")
    subject, setting = signing_subject(settings)
    if TEST_MARK in subject:
        raise ConfigError(f"{setting}: the signing certificate is marked {TEST_MARK!r}; use the company's")
    if not settings.trust_roots_path.exists():
        raise ConfigError(f"IMAGING_TRUST_ROOTS: {settings.trust_roots_path} does not exist")
    if any(TEST_MARK in s for s in _subjects_in_pem(settings.trust_roots_path)):
        raise ConfigError(
            f"IMAGING_TRUST_ROOTS: {settings.trust_roots_path} holds a root marked {TEST_MARK!r}"
        )


def _open_token(settings: Settings, answer) -> None:  # in a child process
    from esign.sign import load_pkcs11

    try:
        load_pkcs11(settings)
        answer.send("")
    except Exception as exc:  # whatever the token's library raises, reported to the parent as text
        answer.send(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")


def _check_token(settings: Settings) -> None:
    """Raise ConfigError unless the PKCS#11 token opens with the PIN and holds the key (in a forked child:
    this process must not initialise the token's library before RQ forks its jobs)."""
    ours, theirs = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_open_token, args=(settings, theirs))
    child.start()
    problem = ours.recv() if ours.poll(60) else "no answer from the token within 60 s"
    child.join(5)
    if problem:
        raise ConfigError(
            f"IMAGING_PKCS11_MODULE: cannot open the signing key {settings.pkcs11_key_label!r}: {problem}"
        )


def check_parts(settings: Settings, store: ObjectStore, conn: Redis) -> None:
    """Raise ConfigError naming the setting of a part that does not answer at start-up: Redis, the object
    store, the signing key (PKCS#12 is opened by ``check``, a PKCS#11 token here). In the embedded
    default, do nothing: ``imaging up`` starts its own parts and waits for them."""
    if settings.env != "production":
        return
    try:
        conn.ping()
    except RedisError as exc:
        raise ConfigError(
            f"IMAGING_REDIS_URL: {masked_url(settings.redis_url or '')} does not answer: {exc}"
        ) from None
    try:
        store.ping()
    except DependencyDown as exc:
        raise ConfigError(f"IMAGING_S3_ENDPOINT: the store does not answer: {exc.message}") from None
    if settings.pkcs11_module:
        _check_token(settings)
