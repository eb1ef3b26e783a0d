"""E-policy records: one owner for ``epolicies/<policy_no>/policy.json``, its versions, deliveries and
downloads, called by the API's routes and the workers' jobs alike.

Both write the same record (the API adds versions and downloads, the jobs mark versions signed and
deliveries sent), so every change goes through ``update`` under a Redis lock per policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from email.message import EmailMessage

from redis import Redis
from redis.exceptions import RedisError

import queues
from errors import NotFound, QueueUnavailable
from esign.epolicy import EPolicyRequest, customer_password
from models import (
    Delivery,
    EPolicy,
    EPolicyStatus,
    EPolicyVersion,
    Mail,
    MailStatus,
    epolicy_file,
    load,
    mail_body_key,
    read,
)
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import utcnow


def load_request(store: ObjectStore, policy_no: str, version: int) -> EPolicyRequest:
    """Return the data a version was issued from."""
    return read(store, EPolicyRequest, epolicy_file(policy_no, version, "request"))


def update(
    conn: Redis,
    store: ObjectStore,
    policy_no: str,
    change: Callable[[EPolicy], object],
    create: bool = False,
) -> EPolicy:
    """Return the policy record after applying change to it under its lock (API and workers both write);
    with create, a policy not stored yet starts empty."""
    try:
        with conn.lock(f"lock:epolicy:{policy_no}", timeout=30, blocking_timeout=15):
            try:
                policy = load(store, EPolicy, policy_no)
            except NotFound:
                if not create:
                    raise
                policy = EPolicy(policy_no=policy_no)
            change(policy)
            store.put(EPolicy.key_of(policy_no), policy.to_json(), "application/json")
            return policy
    except RedisError as exc:
        raise QueueUnavailable(f"Redis: cannot lock e-policy {policy_no}: {exc}") from exc


def issue(
    store: ObjectStore, conn: Redis, settings: Settings, request: EPolicyRequest
) -> tuple[EPolicyVersion, bool]:
    """Return the version this data is and whether it is new (the same data is the same version),
    stored and queued for rendering, signing and mailing."""
    digest = request.digest()
    found: dict = {}

    def add_version(policy: EPolicy) -> None:
        same = next((v for v in policy.versions if v.digest == digest), None)
        found["new"] = same is None
        if same is None:
            same = EPolicyVersion(version=len(policy.versions) + 1, digest=digest, requested_at=utcnow())
            data = request.model_dump_json(indent=1).encode()
            store.put(epolicy_file(request.policy_no, same.version, "request"), data, "application/json")
            policy.versions.append(same)
        found["version"] = same

    update(conn, store, request.policy_no, add_version, create=True)
    version = found["version"]
    # Queued every time (the job id makes it once): a crash between storing and queueing heals on a resend.
    queues.enqueue(
        conn,
        settings,
        "esign",
        queues.ISSUE_EPOLICY,
        request.policy_no,
        version.version,
        job_id=f"epolicy-{request.policy_no}-v{version.version}",
    )
    return version, found["new"]


def mark_signed(conn: Redis, store: ObjectStore, policy_no: str, version: int, doc_id: str) -> EPolicy:
    """Return the record after marking a version signed (once) and indexed as ``doc_id``."""

    def signed(policy: EPolicy) -> None:
        v = policy.versions[version - 1]
        if v.status == EPolicyStatus.rendering:
            v.status, v.signed_at, v.doc_id = EPolicyStatus.signed, utcnow(), doc_id

    return update(conn, store, policy_no, signed)


def mail_version(conn: Redis, store: ObjectStore, settings: Settings, policy_no: str, version: int) -> Mail:
    """Return the mail queued to the holder with a signed version attached, after recording it as a
    delivery of that version; the letter says how to open the PDF and links to the customer's page."""
    from esign.letter import epolicy_letter
    from esign.tokens import make_token

    request = load_request(store, policy_no, version)
    _, hint = customer_password(request, settings.password_rule(request.product_code))
    token = make_token(settings.token_key(), policy_no, settings.link_days * 86400)
    link = f"{settings.base_url}/epolicy/{token}"
    pdf = store.get(epolicy_file(policy_no, version, "customer"))
    letter = epolicy_letter(request, version, pdf, link, settings.mail_from, hint)
    mail = submit_mail(conn, store, settings, letter, policy_no=policy_no, enqueue_now=False)

    def queued(policy: EPolicy) -> None:
        to = mail.to[0] if mail.to else ""
        policy.deliveries.append(Delivery(mail_id=mail.mail_id, version=version, to=to, queued_at=utcnow()))

    update(conn, store, policy_no, queued)
    queue_delivery(conn, settings, mail.mail_id)
    return mail


def mail_once(conn: Redis, store: ObjectStore, settings: Settings, policy: EPolicy, version: int) -> None:
    """Mail a freshly signed version unless a delivery of it is recorded; a delivery recorded but maybe
    not queued (a crash between the two) is queued again, once."""
    deliveries = [d for d in policy.deliveries if d.version == version]
    if not deliveries:
        mail_version(conn, store, settings, policy.policy_no, version)
    for d in deliveries:
        if d.status == "queued":
            queue_delivery(conn, settings, d.mail_id)


def queue_delivery(conn: Redis, settings: Settings, mail_id: str) -> None:
    queues.enqueue(conn, settings, "mail", queues.DELIVER_MAIL, mail_id, job_id=f"mail-{mail_id}")


def submit_mail(
    conn: Redis,
    store: ObjectStore,
    settings: Settings,
    message: EmailMessage,
    policy_no: str | None = None,
    enqueue_now: bool = True,
) -> Mail:
    """Return the mail record after storing the message and (unless told not to) queueing its delivery."""
    mail = Mail(
        mail_id="m" + secrets.token_hex(16),
        to=[str(a) for a in message.get_all("To", [])],
        subject=str(message.get("Subject", "")),
        policy_no=policy_no,
    )
    store.put(mail_body_key(mail.mail_id), message.as_bytes(), "message/rfc822")
    store.put(mail.key, mail.to_json(), "application/json")
    if enqueue_now:
        queue_delivery(conn, settings, mail.mail_id)
    return mail


def delivery_done(conn: Redis, store: ObjectStore, mail: Mail) -> None:
    """Write a mail's outcome into its e-policy's record: sent, or delivery_failed with the reason."""
    if not mail.policy_no:
        return

    def outcome(policy: EPolicy) -> None:
        for d in policy.deliveries:
            if d.mail_id == mail.mail_id:
                retrying = mail.status == MailStatus.queued
                d.status = "retrying" if retrying else mail.status.value
                d.at, d.error = utcnow(), mail.last_error
                v = policy.versions[d.version - 1]
                if mail.status == MailStatus.sent:
                    v.status, v.reason = EPolicyStatus.sent, None
                else:
                    v.status = EPolicyStatus.delivery_failed
                    v.reason = f"{mail.last_error} (retrying)" if retrying else mail.last_error

    update(conn, store, mail.policy_no, outcome)


def version_pdf(store: ObjectStore, policy_no: str, version: int | None, kind: str) -> tuple[int, bytes]:
    """Return the version number (the current one if None) and its ``customer`` or ``archive`` PDF."""
    number = version or load(store, EPolicy, policy_no).current.version
    try:
        return number, store.get(epolicy_file(policy_no, number, kind))
    except ObjectNotFound:
        raise NotFound(f"e-policy {policy_no} has no signed version {number} (yet)") from None
