"""One settings object, read from ``IMAGING_*`` environment variables and an optional ``.env``.

The embedded default (``imaging up``) needs none of them: Redis is started privately, objects go
to a directory under the data dir and mail to ``<data dir>/outbox``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errors import ConfigError
from roles import Role

ENV_PREFIX = "IMAGING_"
# One source of CSP frame-ancestors: 'self' or a scheme, host (its first label may be *) and port.
FRAME_SOURCE = re.compile(r"'self'|https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")


def parse_api_keys(text: str) -> dict[str, Role]:
    """Return ``{key: role}`` from ``key:role,key:role``; raises ValueError naming the bad pair."""
    keys: dict[str, Role] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, role = pair.rpartition(":")
        if not sep or not key:
            raise ValueError(f"'{pair[:4]}…' is not a key:role pair")
        if role not in Role.__members__:
            raise ValueError(f"role '{role}' is not one of {', '.join(Role)}")
        if len(key) < 16:
            raise ValueError(f"the key for role '{role}' is shorter than 16 characters")
        keys[key] = Role(role)
    return keys


def _read_keys_file(path: Path) -> str:
    """Return the pairs of an API keys file as one comma-separated text; raises ValueError naming the file."""
    try:
        return path.read_text().replace("\n", ",")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True)

    # embedded: `imaging up` on one machine, local fallbacks allowed; production: see production.py.
    env: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("./var")
    redis_url: str | None = None

    s3_endpoint: str | None = None
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = Field(default="imaging", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_secure: bool = False
    s3_region: str | None = None
    s3_sse: str = Field(default="", pattern=r"^(|s3|kms:[A-Za-z0-9:/_.-]+)$")  # server-side encryption

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)
    mail_from: str = Field(default="e-policy@localhost", pattern=r"^[^@\s]+@[^@\s]+$")

    api_keys: str = ""
    # The same pairs in a file (a pair a line, or commas), to keep keys out of the environment.
    api_keys_file: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Proxies whose X-Forwarded-For / -Proto the API believes (addresses or networks, comma-separated);
    # none by default: the client is the connection's peer, whatever headers it sends.
    trusted_proxies: str = ""
    # Which sites may show our pages in a frame (CSP frame-ancestors): 'none', or 'self' and origins such
    # as https://core.insurer.example for a core system that embeds the viewer.
    frame_ancestors: str = "'none'"
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_verify_bytes: int = Field(default=16 * 1024 * 1024, gt=0)  # a PDF sent to POST /v1/verify
    max_json_bytes: int = Field(default=256 * 1024, gt=0)  # every other body: a JSON document
    # Against decompression bombs: an A4 page at 600 dpi is 35 Mpx.
    max_page_pixels: int = Field(default=60_000_000, gt=0)
    max_pages: int = Field(default=500, gt=0)
    # Against files built to stall the decoder (a real page takes well under a second to read).
    page_seconds: float = Field(default=30.0, gt=0)

    # E-policy signing: a PKCS#12 file (default <data dir>/keys/signer.p12 from `imaging keys init`) with
    # its passphrase from a setting or a file; or a PKCS#11 token (an HSM) when IMAGING_PKCS11_MODULE is set.
    signing_pkcs12: Path | None = None
    signing_passphrase: SecretStr | None = None
    signing_passphrase_file: Path | None = None
    pkcs11_module: Path | None = None
    pkcs11_token: str | None = None
    pkcs11_key_label: str | None = None
    pkcs11_pin: SecretStr | None = None
    pkcs11_cert: Path | None = None  # the signing certificate (PEM or DER); its chain in trust_roots
    tsa_url: str | None = None  # RFC 3161 time-stamping service: PAdES B-T when set, B-B otherwise
    trust_roots: Path | None = None  # PEM roots the verifier trusts (default <data dir>/keys/ca.pem)
    public_url: str = ""  # how customers reach the service, for links and QR codes (default http://host:port)
    token_secret: SecretStr | None = None  # signs customers' links (default: a random one under keys/)
    # Names ID numbers in object keys by HMAC (default: a random one under keys/); production must set it.
    index_secret: SecretStr | None = None
    link_days: int = Field(default=30, ge=1, le=3650)  # how long a customer's link opens the policy
    # The customer's PDF password per product code: `id6` (last six of the holder's ID number, the
    # default) or `birth` (the holder's birth date, YYYYMMDD), e.g. "KN01:birth,TK02:id6".
    epolicy_passwords: str = Field(
        default="", pattern=r"^([A-Z0-9]{2,20}:(id6|birth)(,[A-Z0-9]{2,20}:(id6|birth))*)?$"
    )

    # Staff sign-in (people/): sessions, lock-out after bad passwords, API tokens.
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="a signed-in session ends after this many minutes without a request"
    )
    session_max_hours: int = Field(
        12, ge=1, le=24 * 7, description="a session ends this many hours after sign-in, however busy"
    )
    signin_lock_after: int = Field(
        5, ge=1, le=100, description="bad passwords in a row that lock an account for a while"
    )
    signin_lock_minutes: int = Field(
        15, ge=1, le=24 * 60, description="how long an account stays locked after too many bad passwords"
    )
    token_days: int = Field(
        90, ge=1, le=3650, description="days an API token lives when its creator gives no expiry"
    )

    # Seconds between the retries of a job whose dependency was down; the count is the number of retries.
    retry_intervals: str = Field(default="5,15,60,300,900", pattern=r"^\d+(,\d+)*$")
    job_timeout: int = Field(default=600, gt=0)

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"'{item}' is not an IP address or network, e.g. 10.0.0.5,10.1.0.0/16"
                ) from None
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _api_keys_file_parse(cls, value: Path | None) -> Path | None:
        if value is not None:
            parse_api_keys(_read_keys_file(value))
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors_are_sources(cls, value: str) -> str:
        # The value goes into the CSP header as it is: a ';' or ',' would add directives or policies.
        value = " ".join(value.split())
        if value != "'none'" and not all(FRAME_SOURCE.fullmatch(s) for s in value.split(" ")):
            raise ValueError(
                "give 'none', or 'self' and origins separated by spaces, e.g. 'self' https://core.insurer.example"
            )
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_is_host_port(cls, value: str | None) -> str | None:
        if value and ("://" in value or "/" in value):
            raise ValueError("give host:port without a scheme or path, e.g. minio.internal:9000")
        return value or None

    @field_validator("smtp_user")
    @classmethod
    def _login_only_over_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("smtp_starttls"):
            raise ValueError(
                "a login without TLS sends the password in clear: set IMAGING_SMTP_STARTTLS=true"
            )
        return value

    @cached_property
    def keys(self) -> dict[str, Role]:
        """Return every API key with its role: IMAGING_API_KEYS, IMAGING_API_KEYS_FILE and, in the embedded
        default, the admin key ``imaging up`` keeps in <data dir>/admin.key. It is read here so that it need
        not travel in the environment, which every program the service runs inherits and which
        /proc/<pid>/environ and crash reports show."""
        keys = parse_api_keys(self.api_keys)
        if self.api_keys_file is not None:
            keys |= parse_api_keys(_read_keys_file(self.api_keys_file))
        if self.env == "embedded" and self.admin_key_path.exists():
            keys |= parse_api_keys(self.admin_key_path.read_text().strip() + ":admin")
        return keys

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def proxies(self) -> list[str]:
        """Return the trusted proxies' addresses and networks (empty: forwarded headers are ignored)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def retry_schedule(self) -> list[int]:
        return [int(s) for s in self.retry_intervals.split(",")]

    @property
    def redis_socket(self) -> Path:
        """Where the private Redis of ``imaging up`` listens: a unix socket in a 0700 directory."""
        return self.data_dir.resolve() / "redis" / "redis.sock"

    @property
    def redis_target(self) -> str | None:
        """The Redis to use: IMAGING_REDIS_URL, or else the private one ``imaging up`` runs on this data
        dir (so admin commands beside it need no setting); None when there is neither."""
        if self.redis_url:
            return self.redis_url
        return f"unix://{self.redis_socket}?db=0" if self.redis_socket.exists() else None

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def pkcs12_path(self) -> Path:
        return self.signing_pkcs12 or self.keys_dir / "signer.p12"

    @property
    def trust_roots_path(self) -> Path:
        return self.trust_roots or self.keys_dir / "ca.pem"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def token_key(self) -> bytes:
        """Return the secret that signs customers' links, made once under the keys dir if not set."""
        if self.token_secret is not None:
            return self.token_secret.get_secret_value().encode()
        return _secret_file(self.keys_dir / "token.secret")

    def index_key(self) -> bytes:
        """Return the secret that names personal numbers in object keys (storage.ObjectStore.private_name),
        made once under the keys dir if not set. Every process of one deployment needs the same one."""
        if self.index_secret is not None:
            return self.index_secret.get_secret_value().encode()
        return _secret_file(self.keys_dir / "index.secret")

    def password_rule(self, product_code: str) -> str:
        rules = dict(pair.split(":") for pair in self.epolicy_passwords.split(",") if pair)
        return rules.get(product_code, "id6")

    def pkcs12_passphrase(self) -> bytes | None:
        """Return the PKCS#12 passphrase from the setting, else from its file (default beside the key)."""
        if self.signing_passphrase is not None:
            return self.signing_passphrase.get_secret_value().encode()
        path = self.signing_passphrase_file or self.keys_dir / "signer.pass"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            return None


def _secret_file(path: Path) -> bytes:
    """Return the secret kept in path, made now if absent: created 0600, never readable by others even
    for a moment, and by one process when two start at once (the other reads it)."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def load_settings(**overrides: object) -> Settings:
    """Return the settings, or raise ConfigError with one line naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings"
        raise ConfigError(f"{name}: {err['msg']}".replace("Value error, ", "")) from None
