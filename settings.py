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
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errors import ConfigError
from people import branches
from roles import Role
from vocabulary import DocType, EventKind

ENV_PREFIX = "IMAGING_"
# Secrets that may also be given as a file, IMAGING_<NAME>_FILE (the PKCS#12 passphrase and the API keys
# have files of their own: IMAGING_SIGNING_PASSPHRASE_FILE, IMAGING_API_KEYS_FILE).
SECRET_FILES = (
    "redis_url",
    "s3_secret_key",
    "smtp_password",
    "pkcs11_pin",
    "token_secret",
    "index_secret",
    "webhook_secret",
    "mailbox_imap_password",
)
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


def parse_group_map(text: str) -> list[tuple[str, str]]:
    """Return ``[(name, group DN)]`` from ``name:DN;name:DN``; raises ValueError naming the bad pair."""
    pairs = []
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, dn = pair.partition(":")
        if not sep or not name.strip() or "=" not in dn:
            raise ValueError(
                f"'{pair}' is not a name:group DN pair, e.g. keyer:cn=keyers,ou=groups,dc=insurer,dc=cn"
            )
        pairs.append((name.strip(), dn.strip()))
    return pairs


def parse_webhooks(text: str) -> list[tuple[str, str]]:
    """Return ``[(event, URL)]`` from ``event=URL;event=URL`` (event ``*``: every event); raises ValueError
    naming the bad pair."""
    pairs = []
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        event, sep, url = (part.strip() for part in pair.partition("="))
        if not sep or (event != "*" and event not in EventKind._value2member_map_):
            raise ValueError(f"'{pair}' is not event=URL with an event of {', '.join(EventKind)} or *")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        pairs.append((event, url))
    return pairs


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(text: str, starttls: bool) -> str | None:
    """Return what is wrong with one directory URL, naming the variable; None if nothing."""
    url = urlsplit(text)
    if url.scheme not in ("ldap", "ldaps") or not url.hostname or url.path not in ("", "/"):
        return f"IMAGING_LDAP_URL: give ldap://host[:port] or ldaps://host[:port], without a path, not {text}"
    if url.scheme == "ldap" and not starttls and not _is_loopback(url.hostname):
        return (
            f"IMAGING_LDAP_URL: {text} sends passwords in clear; use ldaps:// or IMAGING_LDAP_STARTTLS=true"
        )
    if url.scheme == "ldaps" and starttls:
        return f"IMAGING_LDAP_STARTTLS: {text} is TLS from the start; set it to false"
    return None


def _directory_problem(s: Settings) -> str | None:
    """Return what is missing or unsafe in the directory settings, naming the variable; None if nothing."""
    if problem := next(filter(None, (_url_problem(url, s.ldap_starttls) for url in s.ldap_urls)), None):
        return problem
    template = s.ldap_user_dn_template or None
    checks = [
        (
            template is not None and "{username}" not in template,
            "IMAGING_LDAP_USER_DN_TEMPLATE: has no {username}, e.g. uid={username},ou=people,dc=insurer",
        ),
        (
            template is None and not s.ldap_base_dn,
            "IMAGING_LDAP_BASE_DN: not set; say where people are searched (or IMAGING_LDAP_USER_DN_TEMPLATE)",
        ),
        (
            bool(s.ldap_bind_dn) and s.ldap_bind_password is None and s.ldap_bind_password_file is None,
            "IMAGING_LDAP_BIND_PASSWORD: not set (nor its _FILE) for IMAGING_LDAP_BIND_DN",
        ),
        (
            bool(s.ldap_user_filter) and not (s.ldap_user_filter[0] == "(" and s.ldap_user_filter[-1] == ")"),
            "IMAGING_LDAP_USER_FILTER: give a filter in parentheses, e.g. (objectClass=inetOrgPerson)",
        ),
        (
            "{dn}" not in s.ldap_group_filter or not s.ldap_group_filter.startswith("("),
            "IMAGING_LDAP_GROUP_FILTER: give a filter in parentheses with {dn}, e.g. (member={dn})",
        ),
        (
            not s.ldap_role_groups,
            "IMAGING_LDAP_ROLE_GROUPS: not set; without it nobody from the directory has a role",
        ),
        (
            not s.ldap_branch_groups and not s.ldap_branch_attribute,
            "IMAGING_LDAP_BRANCH_GROUPS: not set, nor IMAGING_LDAP_BRANCH_ATTRIBUTE; a person needs a branch",
        ),
    ]
    return next((message for wrong, message in checks if wrong), None)


class Settings(BaseSettings):
    """Every setting, as ``IMAGING_<NAME>``. Each field's ``description`` is its meaning in the README's
    Settings table (``imaging config table --write`` regenerates the table); ``readme_default`` in
    ``json_schema_extra`` words a default that its value does not say; ``secret`` marks a plain-text
    setting that ``imaging config check`` must mask (SecretStr fields are masked anyway)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True)

    env: Literal["embedded", "production"] = Field(
        "embedded",
        description="`production` refuses at start-up, naming the variable: no Redis URL, no SMTP host (the "
        "outbox), no public URL, no S3 store, S3 without TLS, no `IMAGING_INDEX_SECRET` or "
        "`IMAGING_TOKEN_SECRET`, a signing key or trust root marked TEST, a webhook URL without https; and "
        "it stops when Redis, the store or the signing key does not answer or open (`production.py`)",
    )
    data_dir: Path = Field(
        Path("./var"),
        description="local object store, private Redis (a unix socket in `redis/`, 0700), outbox; "
        "`admin.key`, the admin key `imaging up` makes, which the embedded default accepts "
        "beside `IMAGING_API_KEYS`; under `imaging up` everything in it is 0700/0600",
        json_schema_extra={"readme_default": "`./var`"},
    )
    redis_url: str | None = Field(
        None,
        description="the shared Redis (`redis://`, or `rediss://` for TLS; a password in it is masked by "
        "`imaging config check`)",
        json_schema_extra={"readme_default": "unset: `imaging up` starts its own", "secret": True},
    )
    redis_url_file: Path | None = Field(
        None, description="a file holding `IMAGING_REDIS_URL` (with its password)"
    )

    s3_endpoint: str | None = Field(
        None,
        description="`host:port` of MinIO or another S3 server",
        json_schema_extra={"readme_default": "unset: local store under the data dir"},
    )
    s3_access_key: str = Field("", description="S3 access key")
    s3_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret key")
    s3_secret_key_file: Path | None = Field(None, description="a file holding `IMAGING_S3_SECRET_KEY`")
    s3_bucket: str = Field(
        "imaging", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="created on first use"
    )
    s3_secure: bool = Field(False, description="HTTPS to S3 (production requires it)")
    s3_region: str | None = Field(None, description="S3 region")
    s3_sse: str = Field(
        "",
        pattern=r"^(|s3|kms:[A-Za-z0-9:/_.-]+)$",
        description="server-side encryption of every object: `s3` (SSE-S3, keys held by the store) or "
        "`kms:<key id>` (SSE-KMS, over TLS)",
    )

    smtp_host: str | None = Field(
        None,
        description="SMTP server",
        json_schema_extra={"readme_default": "unset: mails go to `<data dir>/outbox/*.eml`"},
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(False, description="STARTTLS to the SMTP server")
    smtp_user: str | None = Field(
        None,
        description="SMTP login; refused at start without `IMAGING_SMTP_STARTTLS=true` (it would send the "
        "password in clear)",
    )
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_password_file: Path | None = Field(None, description="a file holding `IMAGING_SMTP_PASSWORD`")
    smtp_timeout: float = Field(10.0, gt=0, description="seconds to wait for the SMTP server")
    mail_from: str = Field(
        "e-policy@localhost", pattern=r"^[^@\s]+@[^@\s]+$", description="sender address of the mails"
    )

    api_keys: str = Field(
        "",
        description="the bootstrap keys: `key:role,key:role`; roles `scanner keyer underwriter servicing "
        "claims sales admin auditor manager`; keys of 16+ characters (otherwise people sign in and machines "
        "use API tokens)",
        json_schema_extra={"secret": True},
    )
    api_keys_file: Path | None = Field(
        None,
        description="a file of the same `key:role` pairs, one a line (or commas), read as well as "
        "`IMAGING_API_KEYS`: keeps the keys out of the environment that every child process inherits",
    )
    api_host: str = Field("127.0.0.1", description="where `imaging api` / `imaging up` listen")
    api_port: int = Field(8000, ge=1, le=65535, description="the port `imaging api` / `imaging up` listen on")
    trusted_proxies: str = Field(
        "",
        description="addresses or networks (`10.0.0.5,10.1.0.0/16`) of the reverse proxies whose "
        "`X-Forwarded-For` and `X-Forwarded-Proto` the API believes; the client address recorded for a "
        "customer's download is then the one the proxy names, otherwise the connection's own. List only "
        "proxies that overwrite the header, never `0.0.0.0/0` when clients can reach the API directly",
        json_schema_extra={"readme_default": "empty: `X-Forwarded-For` ignored"},
    )
    frame_ancestors: str = Field(
        "'none'",
        description="which sites may show the viewer (and the sign-in it leads to) in a frame (CSP "
        "`frame-ancestors`): `'none'`, or `'self'` and origins separated by spaces, e.g. "
        "`https://core.insurer.example` for a core system's 核保/保全/理赔 screen that embeds the viewer; "
        "every other page is never framed",
    )
    max_upload_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="a larger scan upload gets 413 before it is read",
        json_schema_extra={"readme_default": "64 MiB"},
    )
    max_verify_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="the same for a PDF sent to `POST /v1/verify`",
        json_schema_extra={"readme_default": "16 MiB"},
    )
    max_json_bytes: int = Field(
        256 * 1024,
        gt=0,
        description="the same for every other body (JSON)",
        json_schema_extra={"readme_default": "256 KiB"},
    )
    # Against decompression bombs: an A4 page at 600 dpi is 35 Mpx.
    max_page_pixels: int = Field(
        60_000_000,
        gt=0,
        description="a larger page is refused alone (a decompression bomb); the rest of its file is read",
    )
    max_pages: int = Field(500, gt=0, description="a scan of more pages is refused")
    # Against files built to stall the decoder (a real page takes well under a second to read).
    page_seconds: float = Field(
        30.0,
        gt=0,
        description="a page that takes longer to decode is refused alone (built to stall the reader)",
    )

    # E-policy signing: a PKCS#12 file (default <data dir>/keys/signer.p12 from `imaging keys init`) with
    # its passphrase from a setting or a file; or a PKCS#11 token (an HSM) when IMAGING_PKCS11_MODULE is set.
    signing_pkcs12: Path | None = Field(
        None,
        description="the e-policy signing key and certificate, PKCS#12",
        json_schema_extra={"readme_default": "`<data dir>/keys/signer.p12` (`imaging keys init`)"},
    )
    signing_passphrase: SecretStr | None = Field(None, description="the PKCS#12 file's passphrase")
    signing_passphrase_file: Path | None = Field(
        None,
        description="a file holding the PKCS#12 passphrase",
        json_schema_extra={"readme_default": "`<data dir>/keys/signer.pass`"},
    )
    pkcs11_module: Path | None = Field(
        None, description="a PKCS#11 library (an HSM): when set, the signing key is the token's, not PKCS#12"
    )
    pkcs11_token: str | None = Field(None, description="the PKCS#11 token's label")
    pkcs11_key_label: str | None = Field(None, description="the signing key's label in the token")
    pkcs11_pin: SecretStr | None = Field(None, description="the token's user PIN")
    pkcs11_pin_file: Path | None = Field(None, description="a file holding `IMAGING_PKCS11_PIN`")
    pkcs11_cert: Path | None = Field(
        None, description="the token key's signing certificate (PEM or DER); its chain in the trust roots"
    )
    tsa_url: str | None = Field(
        None, description="RFC 3161 time-stamping service: signatures are PAdES B-T when set, B-B otherwise"
    )
    pades_level: Literal["B-B", "B-T", "B-LT", "B-LTA"] | None = Field(
        None,
        description="PAdES level of the e-policies' signatures. Unset: B-T with IMAGING_TSA_URL, else B-B. "
        "B-LT also embeds the signer's certificate status (OCSP or CRL, fetched from the CA when signing; "
        "the roots in IMAGING_TRUST_ROOTS must include the signer's); B-LTA adds a document timestamp over "
        "it, so the copies can be checked offline after the certificates expire. B-T and up need "
        "IMAGING_TSA_URL",
    )
    seal_image: Path | None = Field(
        None,
        description="the company's seal as a PNG (transparent background), shown in the visible signature "
        "beside 签章单位 and 签章时间; unset: a red round seal drawn by the service",
    )
    seal_company: str = Field(
        "",
        max_length=40,
        description="the 签章单位 shown beside the seal; empty: the company's name printed on the e-policy",
    )
    trust_roots: Path | None = Field(
        None,
        description="PEM roots the verifier trusts",
        json_schema_extra={"readme_default": "`<data dir>/keys/ca.pem` (the test CA)"},
    )
    public_url: str = Field(
        "",
        description="how customers reach the service (`https://...`), for the links in mails and the QR "
        "code on every e-policy; production requires it",
        json_schema_extra={"readme_default": "`http://<api host>:<api port>`"},
    )
    token_secret: SecretStr | None = Field(
        None,
        description="signs customers' links; every process of one deployment needs the same one",
        json_schema_extra={"readme_default": "a random one in `<data dir>/keys/token.secret`"},
    )
    token_secret_file: Path | None = Field(None, description="a file holding `IMAGING_TOKEN_SECRET`")
    index_secret: SecretStr | None = Field(
        None,
        description="names ID numbers in object keys by HMAC (`index/customer/<hmac>/`), so listings and S3 "
        "access logs never show a number; every process needs the same one",
        json_schema_extra={"readme_default": "a random one in `<data dir>/keys/index.secret`"},
    )
    index_secret_file: Path | None = Field(None, description="a file holding `IMAGING_INDEX_SECRET`")
    link_days: int = Field(30, ge=1, le=3650, description="how many days a customer's link opens the policy")
    epolicy_reminder_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="days after an e-policy's mail is sent without the customer acknowledging receipt "
        "(签收) before one reminder is mailed; 0: no reminders",
    )
    epolicy_passwords: str = Field(
        "",
        pattern=r"^([A-Z0-9]{2,20}:(id6|birth)(,[A-Z0-9]{2,20}:(id6|birth))*)?$",
        description="the customer's PDF password per product code: `id6` (last six of the holder's ID "
        "number, the default) or `birth` (the holder's birth date, YYYYMMDD), e.g. `KN01:birth,TK02:id6`",
    )

    # The staff directory (LDAP or Active Directory, people/directory.py): on when IMAGING_LDAP_URL is set.
    ldap_url: str | None = Field(
        None,
        description="the directory for staff sign-in, `ldap://host:389` or `ldaps://host:636`, or several "
        "separated by spaces, tried in order when one cannot be reached; unset: no directory. Plain "
        "`ldap://` to another host than this one needs `IMAGING_LDAP_STARTTLS=true` (passwords would travel "
        "in clear)",
    )
    ldap_starttls: bool = Field(
        False, description="upgrade an `ldap://` connection with StartTLS before any password is sent"
    )
    ldap_ca_file: Path | None = Field(
        None,
        description="PEM file of the CAs that vouch for the directory's certificate (unset: the system's)",
    )
    # Whole seconds: ldap3 sets SO_RCVTIMEO from it with struct.pack('LL', ...), which takes integers only.
    ldap_timeout: int = Field(
        5, ge=1, description="seconds to connect and for each answer; past it a sign-in fails as unavailable"
    )
    ldap_base_dn: str = Field("", description="where people are searched, e.g. `ou=people,dc=insurer,dc=cn`")
    ldap_bind_dn: str | None = Field(
        None, description="the service account that searches for people and groups (unset: anonymous search)"
    )
    ldap_bind_password: SecretStr | None = Field(None, description="its password")
    ldap_bind_password_file: Path | None = Field(
        None, description="the same in a file, to keep it out of the environment"
    )
    ldap_user_attribute: str = Field(
        "uid",
        pattern=r"^[A-Za-z][A-Za-z0-9-]*$",
        description="the attribute that holds the sign-in name (`sAMAccountName` in Active Directory); its "
        "value, as the directory spells it, is the person's username",
    )
    ldap_user_filter: str = Field(
        "",
        description="an extra filter a person must match, e.g. `(objectClass=inetOrgPerson)`, or "
        "`(!(userAccountControl:1.2.840.113556.1.4.803:=2))` to leave out disabled AD accounts",
    )
    ldap_user_dn_template: str | None = Field(
        None,
        description="instead of a search, bind as this DN, e.g. `uid={username},ou=people,dc=insurer,dc=cn` "
        "(the name is escaped); the person's own bind then reads their entry and groups",
    )
    ldap_group_base_dn: str | None = Field(
        None,
        description="where groups (`groupOfNames`, `groupOfUniqueNames`) listing their members are "
        "searched; unset: a person's groups are their `memberOf` attribute (Active Directory, OpenLDAP's "
        "memberof overlay)",
    )
    ldap_group_filter: str = Field(
        "(|(member={dn})(uniqueMember={dn}))",
        description="how a group under `IMAGING_LDAP_GROUP_BASE_DN` names a member, `{dn}` the person's DN "
        "(escaped); for Active Directory's nested groups `(member:1.2.840.113556.1.4.1941:={dn})`",
    )
    ldap_role_groups: str = Field(
        "",
        description="which group gives which role: `role:group DN` pairs separated by `;`, e.g. "
        "`underwriter:cn=underwriters,ou=groups,dc=insurer,dc=cn`; a person in none of them cannot sign in",
    )
    ldap_branch_groups: str = Field(
        "", description="which group puts a person in which branch: `code:group DN` pairs separated by `;`"
    )
    ldap_branch_attribute: str = Field(
        "",
        pattern=r"^([A-Za-z][A-Za-z0-9-]*)?$",
        description="or the attribute of a person's entry that holds their branch code, e.g. "
        "`departmentNumber`; a person with no branch or several cannot sign in",
    )
    ldap_name_attribute: str = Field(
        "cn", pattern=r"^[A-Za-z][A-Za-z0-9-]*$", description="the attribute with the person's full name"
    )

    # The branch (机构) tree, people/branches.py.
    branches: str = Field(
        "",
        description="the branch tree: `parent:child,child` entries separated by `;`, e.g. "
        "`86:8611,8612;8611:861101`; one root (the head office). A person sees their branch and those below "
        "it; unset: their own branch only",
    )
    branches_file: Path | None = Field(
        None, description="the same tree in a file, one `parent:child,child` entry a line, `#` for comments"
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

    retry_intervals: str = Field(
        "5,15,60,300,900",
        pattern=r"^\d+(,\d+)*$",
        description="seconds between retries of a job whose dependency was down; their count is the number "
        "of retries",
    )
    job_timeout: int = Field(600, gt=0, description="seconds a job may run")
    immediate_workers: int = Field(
        1,
        ge=0,
        le=16,
        description="worker processes `imaging up` starts besides `--workers` taking only immediate scans: "
        "a customer at the counter does not wait for the batch jobs the other workers hold",
    )
    ppocr_runtime: Literal["auto", "onnxruntime"] = Field(
        "auto",
        description="what runs PP-OCR, the other OCR engine, in a worker: `auto` runs it in bfloat16 "
        "through OpenVINO where the CPU computes bfloat16 natively (about half the CPU, about 240 MB more "
        "memory a worker), else in onnxruntime; `onnxruntime` always in onnxruntime",
    )
    batch_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="niceness a batch scan's capture job runs at (its forked child only): immediate scans "
        "take the CPU first while both run",
    )
    retention_days: str = Field(
        "",
        pattern=r"^([a-z_]+:[0-9]+(,[a-z_]+:[0-9]+)*)?$",
        description="days each document type is kept after capture, e.g. `idcard_front:1825,application_form:"
        "10950`; `imaging retention run` deletes what is older, never what is under legal hold or filed "
        "under a policy in force; a type not named is kept for ever",
    )
    claim_checklists: str = Field(
        "medical=claim_form,medical_invoice,insured_idcard,bank_card",
        pattern=r"^[a-z_]+=[a-z_]+(,[a-z_]+)*(;[a-z_]+=[a-z_]+(,[a-z_]+)*)*$",
        description="what each claim type needs before its material is complete (`GET /v1/claims/"
        "{claim_no}`): `type=item,item` separated by `;`, the first type the default; an item is a "
        "document type (`claim_form`, `medical_invoice`, `bank_card`, ...) or `insured_idcard` / "
        "`claimant_idcard` (an ID card front whose number is the claim form's insured's or claimant's)",
    )
    # Events to core systems (events.py): where each goes, the secret that signs it, how often it is retried.
    webhooks: str = Field(
        "",
        description="where each event is sent: `event=URL` pairs separated by `;`, events "
        "`document.completed`, `claim.material_complete`, `epolicy.acknowledged` or `*` for all; an event "
        "may name several URLs, e.g. `document.completed=https://uw.insurer.example/hooks/imaging;"
        "*=https://claims.insurer.example/in`; each delivery is signed with `IMAGING_WEBHOOK_SECRET`",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="the HMAC-SHA256 key that signs every webhook (`X-Imaging-Signature`); the receiver "
        "holds the same; required when `IMAGING_WEBHOOKS` is set",
    )
    webhook_secret_file: Path | None = Field(None, description="a file holding `IMAGING_WEBHOOK_SECRET`")
    webhook_retry_intervals: str = Field(
        "10,30,60,300,900,1800,3600,7200,14400,28800",
        pattern=r"^\d+(,\d+)*$",
        description="seconds between the attempts of a webhook delivery that did not get a 2xx; after the "
        "last the delivery is `failed` and the operator replays it (`POST /v1/events/{id}/replay`)",
    )
    webhook_timeout: float = Field(10.0, gt=0, le=120, description="seconds to wait for a webhook's answer")

    # Mail-in intake (intake/): the SMTP receiver `imaging mailbox` (a process of `imaging up` when a port
    # is set), whose mail from known customers becomes scans.
    mailbox_host: str = Field("127.0.0.1", description="where the mail-in SMTP receiver listens")
    mailbox_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="the port of the mail-in SMTP receiver (`imaging mailbox`; `imaging up` runs it when "
        "set); 0: no receiver",
        json_schema_extra={"readme_default": "`0`: off"},
    )
    mailbox_domain: str = Field(
        "localhost",
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$",
        description="the mailbox's domain: mail to any other domain is refused at RCPT (no relaying); "
        "customers write to e.g. `claims@<domain>`, and the replies come from `IMAGING_MAIL_FROM`",
    )
    mailbox_imap_url: str | None = Field(
        None,
        pattern=r"^imaps?://[^/@\s]+@[^/@\s]+(/[^\s]*)?$",
        description="or read the claims mailbox from an IMAP server: `imaps://user@host[:port]/FOLDER` "
        "(`imap://` to this machine only), polled every `IMAGING_MAILBOX_IMAP_SECONDS` by `imaging "
        "mailbox`; each message is taken in or refused as at the SMTP door (a refusal is a reply mail), "
        "then deleted from the folder",
    )
    mailbox_imap_password: SecretStr | None = Field(None, description="the IMAP user's password")
    mailbox_imap_password_file: Path | None = Field(
        None, description="a file holding `IMAGING_MAILBOX_IMAP_PASSWORD`"
    )
    mailbox_imap_seconds: int = Field(
        60, ge=1, le=3600, description="seconds between two looks at the IMAP folder"
    )
    mailbox_max_bytes: int = Field(
        25 * 1024 * 1024,
        gt=0,
        description="a larger message is refused at DATA (552) before it is stored",
        json_schema_extra={"readme_default": "25 MiB"},
    )
    quarantine_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="days a refused mail (unknown sender, attachments we do not read) stays under "
        "`quarantine/` before `imaging retention run` deletes it",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="the address a worker's `/metrics` listens on (`imaging worker --metrics-port`); "
        "`0.0.0.0` for a Prometheus on another machine",
    )
    log_format: Literal["human", "json"] = Field(
        "human",
        description="`json`: every process logs one JSON object a line (time, level, process, logger, "
        "request_id, job_id, scan_id, event); `human`: one readable line, with the ids in brackets",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: object) -> object:
        """Read each secret given as a file (``IMAGING_<NAME>_FILE``: Docker and systemd credentials, a
        Kubernetes secret volume), so that it need not sit in the environment every child inherits."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in SECRET_FILES:
            path, variable = data.get(f"{name}_file"), ENV_PREFIX + name.upper()
            if not path:
                continue
            if data.get(name):
                raise ValueError(f"{variable}: set it or {variable}_FILE, not both")
            try:
                data[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {exc.strerror}") from None
        return data

    @field_validator("pades_level")
    @classmethod
    def _timestamps_need_a_tsa(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value not in (None, "B-B") and not info.data.get("tsa_url"):
            raise ValueError(f"{value} needs a time-stamping service: set IMAGING_TSA_URL too")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("ldap_role_groups")
    @classmethod
    def _role_groups_parse(cls, value: str) -> str:
        for role, _ in parse_group_map(value):
            if role not in Role.__members__:
                raise ValueError(f"role '{role}' is not one of {', '.join(Role)}")
        return value

    @field_validator("ldap_branch_groups")
    @classmethod
    def _branch_groups_parse(cls, value: str) -> str:
        for code, _ in parse_group_map(value):
            if not branches.CODE.fullmatch(code):
                raise ValueError(f"'{code}' is not a branch code (letters, digits, - and _, 1-32)")
        return value

    @field_validator("ldap_bind_password_file", "ldap_ca_file", "branches_file")
    @classmethod
    def _file_is_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                value.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    @model_validator(mode="after")
    def _branches_are_a_tree(self) -> Settings:
        try:
            branches.tree(self)  # the text and the file together, whichever is set
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return self

    @model_validator(mode="after")
    def _directory_is_complete(self) -> Settings:
        if self.ldap_urls and (problem := _directory_problem(self)):
            raise ValueError(problem)
        return self

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

    @field_validator("claim_checklists")
    @classmethod
    def _checklist_items_are_known(cls, value: str) -> str:
        known = {t.value for t in DocType} | {"insured_idcard", "claimant_idcard"}
        for entry in value.split(";"):
            claim_type, _, items = entry.partition("=")
            for item in items.split(","):
                if item not in known:
                    raise ValueError(f"'{item}' (for {claim_type}) is none of {', '.join(sorted(known))}")
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

    @field_validator("webhooks")
    @classmethod
    def _webhooks_parse(cls, value: str) -> str:
        parse_webhooks(value)
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhooks and self.webhook_secret is None:
            raise ValueError(
                "IMAGING_WEBHOOK_SECRET: not set; every webhook is signed with it (or give "
                "IMAGING_WEBHOOK_SECRET_FILE)"
            )
        return self

    @field_validator("mailbox_imap_url")
    @classmethod
    def _imap_over_tls(cls, value: str | None) -> str | None:
        if value and value.startswith("imap://") and not _is_loopback(urlsplit(value).hostname or ""):
            raise ValueError(f"{value} would send the password in clear; use imaps://")
        return value

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

    @cached_property
    def branch_tree(self) -> branches.BranchTree:
        """Return the branch (机构) tree of IMAGING_BRANCHES and its file, read once."""
        return branches.tree(self)

    @property
    def ldap_urls(self) -> list[str]:
        """Return the directory's servers, in the order they are tried."""
        return (self.ldap_url or "").split()

    @property
    def ldap_roles(self) -> list[tuple[Role, str]]:
        """Return the directory groups that give a role, as (role, group DN)."""
        return [(Role(role), dn) for role, dn in parse_group_map(self.ldap_role_groups)]

    @property
    def ldap_branches(self) -> list[tuple[str, str]]:
        """Return the directory groups that put a person in a branch, as (branch code, group DN)."""
        return parse_group_map(self.ldap_branch_groups)

    def ldap_service_password(self) -> str | None:
        """Return the service account's password, from the setting or else its file."""
        if self.ldap_bind_password is not None:
            return self.ldap_bind_password.get_secret_value()
        if self.ldap_bind_password_file is not None:
            return self.ldap_bind_password_file.read_text(encoding="utf-8").strip()
        return None

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def proxies(self) -> list[str]:
        """Return the trusted proxies' addresses and networks (empty: forwarded headers are ignored)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def checklists(self) -> dict[str, tuple[str, ...]]:
        """Return each claim type's checklist items, in the setting's order (the first type the default)."""
        return {
            t: tuple(items.split(","))
            for t, _, items in (e.partition("=") for e in self.claim_checklists.split(";"))
        }

    @property
    def retry_schedule(self) -> list[int]:
        return [int(s) for s in self.retry_intervals.split(",")]

    def webhook_urls(self, event: str) -> list[str]:
        """Return the URLs the event goes to, in the order configured, each once."""
        urls = [url for kind, url in parse_webhooks(self.webhooks) if kind in (event, "*")]
        return list(dict.fromkeys(urls))

    @property
    def webhook_schedule(self) -> list[int]:
        return [int(s) for s in self.webhook_retry_intervals.split(",")]

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
        message = err["msg"].replace("Value error, ", "")
        if err["loc"]:  # a check of the whole (secrets from files) names its variable itself
            message = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper() + ": " + message
        raise ConfigError(message) from None


# ---- what operators read: the effective settings, masked, and the README's table ---------------------


def variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


def is_secret(name: str) -> bool:
    """Return whether a setting's value must never be printed: SecretStr ones and those marked secret."""
    field = Settings.model_fields[name]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return bool(extra.get("secret")) or "SecretStr" in str(field.annotation)


def masked_url(url: str) -> str:
    """Return a URL with the password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def shown(settings: Settings, name: str) -> str:
    """Return a setting's effective value as ``imaging config check`` prints it: secrets masked."""
    value = getattr(settings, name)
    if value is None or value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "(unset)"
    if name == "redis_url":
        return masked_url(value)
    if name == "api_keys":
        roles = sorted(r.value for r in parse_api_keys(value).values())
        return f"*** ({len(roles)} keys: {', '.join(roles)})"
    if is_secret(name):
        return "*** (set)"
    return str(value)


def effective(settings: Settings) -> list[tuple[str, str, str]]:
    """Return (variable, value shown, where it came from) for every setting, secrets masked."""
    return [
        (variable(name), shown(settings, name), "set" if name in settings.model_fields_set else "default")
        for name in Settings.model_fields
    ]


TABLE_START = "<!-- settings table: generated by `imaging config table --write README.md`; do not edit -->"
TABLE_END = "<!-- end of settings table -->"


def _default_text(name: str) -> str:
    field = Settings.model_fields[name]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "readme_default" in extra:
        return str(extra["readme_default"])
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def settings_table() -> str:
    """Return the README's Settings table, one row a setting, from the fields' descriptions; raise
    ValueError naming a setting that has no description."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"{variable(name)}: give it a description (Field(..., description=...))")
        meaning = " ".join(field.description.split()).replace("|", "\\|")
        default = _default_text(name).replace("|", "\\|")
        rows.append(f"| `{variable(name)}` | {default} | {meaning} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    """Return the README text with its generated Settings table replaced by the current one."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no '{TABLE_START}' ... '{TABLE_END}' section")
    return readme[: start + len(TABLE_START)] + "\n" + settings_table() + "\n" + readme[end:]
