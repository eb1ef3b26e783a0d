"""E-policy records: one owner for ``epolicies/<policy_no>/policy.json``, its versions, deliveries,
customer's links and downloads, called by the API's routes and the workers' jobs alike.

Both write the same record (the API adds versions and downloads, the jobs mark versions signed and
deliveries sent), so every change goes through ``update`` under a Redis lock per policy.

A customer's link is recorded when its mail is queued and is bound to the holder of the version it was
mailed with: when a newer version's mail goes to another holder (ID number) or to another address, every
link of the earlier holder or address is revoked, and a link only ever opens versions issued to its
own holder.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

from redis import Redis
from redis.exceptions import RedisError

import figures
import queues
from errors import BadInput, NotFound, QueueUnavailable
from esign.epolicy import EPolicyRequest, customer_password
from esign.tokens import BadToken, LinkToken, make_token, new_link
from models import (
    CustomerLink,
    Delivery,
    Download,
    EPolicy,
    EPolicyStatus,
    EPolicyVersion,
    Mail,
    MailStatus,
    epolicy_file,
    find,
    load,
    mail_body_key,
    read,
)
from settings import Settings
from storage import ObjectNotFound, ObjectStore
from vocabulary import utcnow

log = logging.getLogger(__name__)


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
        figures.note_epolicy(conn, policy)  # each step counted once, for the managers (figures.py)
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
    delivery of that version and its link as one the customer may open (revoking the links it ends);
    the letter says how to open the PDF and links to the customer's page."""
    from esign.letter import epolicy_letter

    request = load_request(store, policy_no, version)
    _, hint = customer_password(request, settings.password_rule(request.product_code))
    token = new_link(policy_no, settings.link_days * 86400)
    link = f"{settings.base_url}/epolicy/{make_token(settings.token_key(), token)}"
    pdf = store.get(epolicy_file(policy_no, version, "customer"))
    letter = epolicy_letter(request, version, pdf, link, settings.mail_from, hint)
    mail = submit_mail(conn, store, settings, letter, policy_no=policy_no, enqueue_now=False)
    holder_of = _holders(store, policy_no)

    def queued(policy: EPolicy) -> None:
        now = utcnow()
        to = mail.to[0] if mail.to else ""
        policy.deliveries.append(Delivery(mail_id=mail.mail_id, version=version, to=to, queued_at=now))
        policy.links.append(_recorded(token, version, request.holder.email, now))
        _bind_links(policy, holder_of, now)

    # The link is recorded before the mail can go: a customer never holds a link the record lacks.
    update(conn, store, policy_no, queued)
    queue_delivery(conn, settings, mail.mail_id)
    return mail


def _recorded(token: LinkToken, version: int, to: str, now: datetime) -> CustomerLink:
    expires = datetime.fromtimestamp(token.expires, UTC)
    return CustomerLink(link_id=token.link_id, version=version, to=to, issued_at=now, expires_at=expires)


def _holders(store: ObjectStore, policy_no: str) -> Callable[[int], tuple[str, str]]:
    """Return a function giving a version's holder: ID number and e-mail (a version's data never changes)."""

    @functools.cache
    def holder_of(version: int) -> tuple[str, str]:
        holder = load_request(store, policy_no, version).holder
        return holder.id_number, holder.email

    return holder_of


def _bind_links(policy: EPolicy, holder_of: Callable[[int], tuple[str, str]], now: datetime) -> None:
    """Revoke the live links of every holder and address but the newest mailed version's: a new holder, or
    the holder's new e-mail, ends the earlier links (a version mailed late to an earlier holder too)."""
    newest = max(link.version for link in policy.links)
    for link in policy.links:
        if link.live(now) and holder_of(link.version) != holder_of(newest):
            link.revoked_at = now
            link.revoked_reason = f"version {newest} went to another holder or e-mail address"


def revoke_links(conn: Redis, store: ObjectStore, policy_no: str, reason: str) -> EPolicy:
    """Return the record after revoking every live link of the policy, for the reason given."""

    def revoke(policy: EPolicy) -> None:
        now = utcnow()
        for link in policy.links:
            if link.live(now):
                link.revoked_at, link.revoked_reason = now, reason

    return update(conn, store, policy_no, revoke)


def open_link(store: ObjectStore, token: LinkToken) -> tuple[EPolicy, CustomerLink]:
    """Return the policy record and the recorded link a checked token names; raise BadToken if the
    link was never recorded (or the policy is gone) or has been revoked."""
    policy = find(store, EPolicy, token.policy_no)
    link = next((k for k in policy.links if k.link_id == token.link_id), None) if policy else None
    if link is None or link.expires_at != datetime.fromtimestamp(token.expires, UTC):
        raise BadToken("this link is not valid")
    if link.revoked_at is not None:
        raise BadToken("this link has been withdrawn; ask for the e-policy to be sent again")
    return policy, link


def versions_for(store: ObjectStore, policy: EPolicy, link: CustomerLink) -> list[EPolicyVersion]:
    """Return the signed versions a customer's link opens, oldest first: those issued to its holder."""
    holder_of = _holders(store, policy.policy_no)
    holder = holder_of(link.version)[0]
    return [v for v in policy.versions if v.signed_at and holder_of(v.version)[0] == holder]


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
                    if v.receipt.acknowledged_at is None:
                        awaiting[_awaiting(policy.policy_no, v.version)] = (d.at or utcnow()).timestamp()
                else:
                    v.status = EPolicyStatus.delivery_failed
                    v.reason = f"{mail.last_error} (retrying)" if retrying else mail.last_error

    awaiting: dict[str, float] = {}
    update(conn, store, mail.policy_no, outcome)
    if awaiting:  # the reminder sweep counts from the first mail sent (nx: a resend does not restart it)
        try:
            conn.zadd(AWAITING_RECEIPT, awaiting, nx=True)
        except RedisError as exc:
            raise QueueUnavailable(
                f"Redis: cannot note e-policy {mail.policy_no} as awaiting receipt: {exc}"
            ) from exc


def version_pdf(store: ObjectStore, policy_no: str, version: int | None, kind: str) -> tuple[int, bytes]:
    """Return the version number (the current one if None) and its ``customer`` or ``archive`` PDF."""
    number = version or load(store, EPolicy, policy_no).current.version
    try:
        return number, store.get(epolicy_file(policy_no, number, kind))
    except ObjectNotFound:
        raise NotFound(f"e-policy {policy_no} has no signed version {number} (yet)") from None


# ---- receipt (签收): opened, downloaded, acknowledged; one reminder ---------------------------------

# Versions mailed and not yet acknowledged, by when their mail went out (score: Unix time). The
# reminder sweep takes those older than IMAGING_EPOLICY_REMINDER_DAYS.
AWAITING_RECEIPT = "epolicy:awaiting-receipt"


def _awaiting(policy_no: str, version: int) -> str:
    return f"{policy_no}:{version}"


def mark_opened(conn: Redis, store: ObjectStore, policy: EPolicy, versions: list[int]) -> None:
    """Record the first time the customer's page showed each of these versions (a write only then)."""
    if all(policy.versions[v - 1].receipt.opened_at for v in versions):
        return

    def opened(p: EPolicy) -> None:
        now = utcnow()
        for v in versions:
            p.versions[v - 1].receipt.opened_at = p.versions[v - 1].receipt.opened_at or now

    update(conn, store, policy.policy_no, opened)


def record_download(
    conn: Redis, store: ObjectStore, policy_no: str, version: int, address: str, link_id: str
) -> None:
    """Record a download of the customer's PDF of a version, and the first one as its receipt's."""

    def downloaded(p: EPolicy) -> None:
        now = utcnow()
        p.downloads.append(Download(version=version, at=now, address=address, link_id=link_id))
        receipt = p.versions[version - 1].receipt
        receipt.downloaded_at = receipt.downloaded_at or now

    update(conn, store, policy_no, downloaded)


def acknowledge(
    conn: Redis, store: ObjectStore, policy_no: str, version: int, link_id: str, address: str
) -> tuple[EPolicyVersion, bool]:
    """Return the version and whether this acknowledgement is new, after recording the customer's
    acknowledgement of receipt (签收): the time, the link used and the address, once (a second press,
    a resent form, keeps the first)."""
    found: dict = {}

    def acknowledged(p: EPolicy) -> None:
        v = p.versions[version - 1]
        found["new"] = v.receipt.acknowledged_at is None
        if found["new"]:
            v.receipt.acknowledged_at = utcnow()
            v.receipt.acknowledged_link, v.receipt.acknowledged_address = link_id, address
        found["version"] = v

    update(conn, store, policy_no, acknowledged)
    with contextlib.suppress(RedisError):  # else the sweep finds the version acknowledged and drops it
        conn.zrem(AWAITING_RECEIPT, _awaiting(policy_no, version))
    return found["version"], found["new"]


def remind_due(conn: Redis, store: ObjectStore, settings: Settings, now: datetime | None = None) -> list[str]:
    """Return the ids of the reminder mails queued for versions mailed more than
    IMAGING_EPOLICY_REMINDER_DAYS ago and not acknowledged: one per version, ever, and only for a
    policy's current version. A rerun queues again a reminder recorded but maybe not queued."""
    if settings.epolicy_reminder_days <= 0:
        return []
    now = now or utcnow()
    cutoff = now.timestamp() - settings.epolicy_reminder_days * 86400
    queued = []
    for member in conn.zrangebyscore(AWAITING_RECEIPT, "-inf", cutoff, start=0, num=200):
        policy_no, _, number = member.decode().rpartition(":")
        try:
            mail_id = _remind(conn, store, settings, policy_no, int(number))
        except BadInput as exc:  # its data is gone or unreadable: no reminder, and said once
            log.warning("e-policy %s v%s: no reminder: %s", policy_no, number, exc.message)
            mail_id = None
        if mail_id:
            queue_delivery(conn, settings, mail_id)
            queued.append(mail_id)
        conn.zrem(AWAITING_RECEIPT, member)
    return queued


def _remind(conn: Redis, store: ObjectStore, settings: Settings, policy_no: str, version: int) -> str | None:
    """Return the id of the version's reminder mail (stored now, or earlier by a run that may not have
    queued it), or None when none is wanted: acknowledged, superseded, or the policy gone."""
    policy = find(store, EPolicy, policy_no)
    if policy is None or version > len(policy.versions):
        return None
    receipt = policy.versions[version - 1].receipt
    if receipt.reminder_mail_id:
        return receipt.reminder_mail_id
    if receipt.acknowledged_at or policy.current.version != version:
        return None
    from esign.letter import reminder_letter

    request = load_request(store, policy_no, version)
    token = new_link(policy_no, settings.link_days * 86400)
    link = f"{settings.base_url}/epolicy/{make_token(settings.token_key(), token)}"
    letter = reminder_letter(request, version, link, settings.mail_from)
    mail = submit_mail(conn, store, settings, letter, policy_no=policy_no, enqueue_now=False)
    chosen: dict = {}

    def reminded(p: EPolicy) -> None:
        r = p.versions[version - 1].receipt
        if r.reminder_mail_id is None and r.acknowledged_at is None:
            r.reminder_mail_id, r.reminded_at = mail.mail_id, utcnow()
            p.links.append(_recorded(token, version, request.holder.email, r.reminded_at))
        chosen["mail_id"] = r.reminder_mail_id  # another run's, if it was first: this one is not sent

    update(conn, store, policy_no, reminded)
    return chosen["mail_id"]


def remind_now(conn: Redis, store: ObjectStore, settings: Settings, every: float) -> None:
    """Run the reminder sweep if no worker ran it in the last ``every`` seconds (workers' housekeeping)."""
    queues.now_and_then(conn, "remind", every, lambda: remind_due(conn, store, settings), "reminders")
