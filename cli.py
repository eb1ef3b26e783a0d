"""``imaging``: one entry point for people running the service."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from errors import ExitCode, ImagingError
from settings import effective, load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def imaging() -> None:
    """Document imaging and e-policy service for insurers."""


@imaging.command()
@click.option("--host", default=None, help="Address to serve on (IMAGING_API_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port of the API (IMAGING_API_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes.")
def up(host: str | None, port: int | None, workers: int) -> None:
    """Run everything on the embedded default: private Redis, local store, API and workers."""
    import supervisor

    settings = load_settings()
    sys.exit(
        supervisor.up(
            settings, host=host or settings.api_host, port=port or settings.api_port, workers=workers
        )
    )


@imaging.command()
@click.option("--host", default=None, help="Address to serve on (IMAGING_API_HOST).")
@click.option("--port", type=int, default=None, help="Port (IMAGING_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Run the HTTP API against IMAGING_REDIS_URL and the configured store."""
    os.umask(0o077)  # what the API writes (local store, keys) is for the service only
    import uvicorn

    from api import create_app

    settings = load_settings()
    app = create_app(settings)
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only IMAGING_TRUSTED_PROXIES.
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        log_config=None,  # uvicorn's lines go through our handler: one shape (IMAGING_LOG_FORMAT), redacted
        proxy_headers=bool(settings.proxies),
        forwarded_allow_ips=settings.proxies or None,
    )


@imaging.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name, unique across machines (default: random).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Serve this worker's /metrics here (0: no).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes on this machine, named NAME-1, NAME-2... (one per core is a good start).",
)
@click.option("--immediate-only", is_flag=True, help="Take only immediate scans (counter customers).")
def worker(burst: bool, name: str | None, metrics_port: int, processes: int, immediate_only: bool) -> None:
    """Run a worker on the queues immediate, esign, mail, batch (in that order); or several."""
    os.umask(0o077)  # what the worker writes (local store, outbox, keys) is for the service only
    if processes > 1:
        import socket

        import supervisor

        if burst:
            raise click.UsageError("--burst runs one worker; leave out --processes")
        settings = load_settings()
        base = name or socket.gethostname()
        sys.exit(supervisor.workers(settings, name=base, processes=processes, metrics_port=metrics_port))
    import worker_process

    worker_process.run(
        load_settings(), burst=burst, name=name, metrics_port=metrics_port, immediate_only=immediate_only
    )


@imaging.command()
def mailbox() -> None:
    """Run the mail-in SMTP door (IMAGING_MAILBOX_PORT), IMAP poller (IMAGING_MAILBOX_IMAP_URL) or both."""
    os.umask(0o077)
    from intake.mailbox import serve

    settings = load_settings()
    if not settings.mailbox_port and not settings.mailbox_imap_url:
        raise click.UsageError(
            "set IMAGING_MAILBOX_PORT (the SMTP door) or IMAGING_MAILBOX_IMAP_URL, or both"
        )
    sys.exit(serve(settings))


@imaging.group()
def jobs() -> None:
    """Jobs that failed for good: list them, put them back."""


@jobs.command("failed")
def jobs_failed() -> None:
    """List failed jobs, oldest first."""
    import queues

    conn = queues.connect(load_settings().redis_target)
    failed = queues.failed_jobs(conn)
    for f in failed:
        click.echo(f"{f.job_id}\t{f.queue}\t{f.func}\t{f.ended_at}\t{f.error}")
    click.echo(f"{len(failed)} failed job(s)", err=True)


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], all_: bool) -> None:
    """Put failed jobs back on their queues."""
    import queues

    if not job_ids and not all_:
        raise click.UsageError("name the job ids to requeue, or pass --all")
    conn = queues.connect(load_settings().redis_target)
    ids = [f.job_id for f in queues.failed_jobs(conn)] if all_ else list(job_ids)
    done = queues.requeue(conn, ids)
    for job_id in done:
        click.echo(job_id)
    missing = sorted(set(ids) - set(done))
    if missing:
        click.echo(f"not in a failed registry: {', '.join(missing)}", err=True)
    click.echo(f"{len(done)} job(s) requeued", err=True)


@imaging.group()
def config() -> None:
    """The settings: what is in force, and the README's table of them."""


@config.command("check")
def config_check() -> None:
    """Print every setting in force (secrets masked) and whether production would start with them:
    exit 0 if so, 2 with the refusal naming the variable if not."""
    import production
    import queues
    from storage import open_store

    settings = load_settings()
    for name, value, source in effective(settings):
        click.echo(f"{name}={value}" + ("" if source == "set" else "  (default)"))
    production.check(settings)
    if settings.env == "production":
        production.check_parts(settings, open_store(settings), queues.connect(settings.redis_target))
        click.echo(
            "production: every setting in place; Redis, the store and the signing key answer", err=True
        )
    else:
        click.echo(
            "embedded default: local fallbacks allowed (IMAGING_ENV=production refuses them)", err=True
        )


@config.command("table")
@click.option(
    "--write", "readme", type=click.Path(exists=True, dir_okay=False), help="Rewrite this README's table."
)
def config_table(readme: str | None) -> None:
    """Print the README's Settings table made from the settings' descriptions, or rewrite it in README."""
    import settings as settings_module

    if readme is None:
        click.echo(settings_module.settings_table())
        return
    path = Path(readme)
    path.write_text(settings_module.with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    click.echo(f"{readme}: settings table rewritten", err=True)


@imaging.group()
def retention() -> None:
    """Documents past their retention period, legal holds, one customer's documents on request."""


def _by() -> str:
    import getpass

    return getpass.getuser()


def _print_retention(report) -> None:
    for doc_id in report.deleted:
        click.echo(f"deleted\t{doc_id}")
    for doc_id, why in report.kept.items():
        click.echo(f"kept\t{doc_id}\t{why}")
    click.echo(f"{len(report.deleted)} documents deleted, {len(report.kept)} kept", err=True)


@retention.command("run")
def retention_run() -> None:
    """Delete every document past its type's period (IMAGING_RETENTION_DAYS), except what is held or needed
    by a policy in force; logged under retention/log/."""
    import retention as retention_module
    from intake.take import expire_quarantine
    from storage import open_store

    settings = load_settings()
    store = open_store(settings)
    gone = expire_quarantine(store, settings.quarantine_days)  # refused mail, after IMAGING_QUARANTINE_DAYS
    click.echo(f"{len(gone)} objects of refused mail deleted from quarantine/", err=True)
    days = retention_module.periods(settings.retention_days)
    if not days:
        raise click.UsageError("IMAGING_RETENTION_DAYS names no document type: no document expires")
    _print_retention(retention_module.expire(store, days, by=_by()))


@retention.command("forget")
@click.option("--customer", "customer_id", required=True, help="The customer's ID number.")
@click.option("--reason", required=True, help="The request, e.g. its reference.")
def retention_forget(customer_id: str, reason: str) -> None:
    """Delete one customer's documents on their request, except what is held or needed by a policy in force;
    logged (by keyed hash, never the number) under retention/log/."""
    import idnumber
    import retention as retention_module
    from errors import BadInput
    from storage import open_store

    if not idnumber.is_valid(customer_id):
        raise BadInput("--customer: not a valid ID number (18 characters, check digit)")
    _print_retention(retention_module.forget(open_store(load_settings()), customer_id, reason, by=_by()))


@retention.command("hold")
@click.option("--kind", type=click.Choice(["policy", "claim", "customer"]), required=True)
@click.option("--number", required=True, help="The policy, claim or ID number.")
@click.option("--reason", help="Why (required to put a hold on).")
@click.option("--release", is_flag=True, help="Take the hold off.")
def retention_hold(kind: str, number: str, reason: str | None, release: bool) -> None:
    """Put a legal hold on every document filed under a number, or take it off."""
    import retention as retention_module
    from storage import open_store

    store = open_store(load_settings())
    if release:
        retention_module.release(store, kind, number, by=_by())
    elif not reason:
        raise click.UsageError("give --reason for the hold")
    else:
        click.echo(retention_module.hold(store, kind, number, reason, by=_by()))


@imaging.command("rebuild")
def rebuild_redis() -> None:
    """Make again in Redis, from the object store, the work in progress it lost: open scans and their jobs,
    key-entry tasks with the values keyed so far, e-policy signing and mail jobs."""
    import queues
    from rebuild import rebuild
    from storage import open_store

    settings = load_settings()
    report = rebuild(queues.connect(settings.redis_target), settings, open_store(settings))
    for label, items in (
        ("scan", report.scans),
        ("task", report.tasks),
        ("epolicy", report.epolicies),
        ("mail", report.mails),
        ("webhook", report.webhooks),
        ("mail-in", report.mail_in),
    ):
        for item in items:
            click.echo(f"{label}\t{item}")
    click.echo(
        f"rebuilt {len(report.scans)} open scans, {len(report.tasks)} key-entry tasks, "
        f"{len(report.epolicies)} e-policy versions, {len(report.mails)} mails, "
        f"{len(report.webhooks)} webhook deliveries, {len(report.mail_in)} customers' mails",
        err=True,
    )


@imaging.group("figures")
def figures_group() -> None:
    """The managers' figures per branch and day (figures.py)."""


@figures_group.command("rebuild")
@click.option("--day", "first", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Beijing day")
@click.option(
    "--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None, help="last day (default: --day)"
)
def figures_rebuild(first, last) -> None:
    """Count these days' figures again from every record in the store (after Redis lost them)."""
    import figures
    import queues
    from storage import open_store

    settings = load_settings()
    days = figures.days_between(first.date(), (last or first).date())
    if not days:
        raise click.BadParameter("--to is before --day")
    counted = figures.rebuild(queues.connect(settings.redis_target), open_store(settings), days)
    click.echo(f"{counted} events counted for {days[0]}..{days[-1]}", err=True)


@imaging.command("migrate")
@click.option("--dry-run", is_flag=True, help="Report what would be upgraded; write nothing.")
def migrate_records(dry_run: bool) -> None:
    """Rewrite every stored record of an older schema at this version's (exit 1 if some could not be read
    or were written by a newer version)."""
    from migrations import migrate
    from storage import open_store

    report = migrate(open_store(load_settings()), dry_run=dry_run)
    for key in report.upgraded:
        click.echo(f"{'would upgrade' if dry_run else 'upgraded'}\t{key}")
    for key in report.newer:
        click.echo(f"newer\t{key}")
    for problem in report.unreadable:
        click.echo(f"unreadable\t{problem}")
    click.echo(
        f"{report.records} records: {len(report.upgraded)} {'to upgrade' if dry_run else 'upgraded'}, "
        f"{len(report.newer)} of a newer version (upgrade imaging here), {len(report.unreadable)} unreadable",
        err=True,
    )
    if report.newer or report.unreadable:
        sys.exit(int(ExitCode.error))


@imaging.group()
def index() -> None:
    """The index of documents by policy, customer and claim number."""


@index.command("check")
@click.option(
    "--repair", is_flag=True, help="Write missing entries, delete stray ones, update stale records."
)
def index_check(repair: bool) -> None:
    """Compare every document with the index entries stored; report (exit 1 on drift, or on documents
    filed under no number) or mend the drift."""
    from indexing.index import check
    from storage import open_store

    report = check(open_store(load_settings()), repair=repair)
    for label, keys in (
        ("missing", report.missing),
        ("stray", report.stray),
        ("stale record", report.stale_records),
        ("unfiled", report.unfiled),
    ):
        for key in keys or []:
            click.echo(f"{label}\t{_masked(key)}")
    verb = "repaired" if repair else "found"
    click.echo(
        f"{report.documents} documents, {report.entries} entries: {len(report.missing or [])} missing, "
        f"{len(report.stray or [])} stray, {len(report.stale_records or [])} stale records {verb}; "
        f"{len(report.unfiled or [])} documents filed under no number (nobody finds them: key their "
        "numbers, or see the scan's checks)",
        err=True,
    )
    if report.unfiled or (not report.clean and not repair):
        sys.exit(int(ExitCode.error))


def _masked(key: str) -> str:
    """An index key with any ID number in it masked, for terminals and logs: keys name customers by a
    keyed hash, but entries written before that (stray now) still carry the number."""
    import idnumber

    return idnumber.mask_all(key)


@imaging.group()
def keys() -> None:
    """E-policy signing keys."""


@keys.command("init")
@click.option("--force", is_flag=True, help="Replace keys that are already there.")
def keys_init(force: bool) -> None:
    """Create a clearly marked TEST CA and signing certificate under <data dir>/keys (not for production)."""
    from esign.keys import init_test_keys

    paths = init_test_keys(load_settings().keys_dir, force=force)
    for name, path in paths.items():
        click.echo(f"{name}\t{path}")
    click.echo("TEST keys made, not for production: the verifier trusts their ca.pem", err=True)


@imaging.command("verify")
@click.argument("pdf", type=click.Path(dir_okay=False))
@click.option("--password", default=None, help="The password of an encrypted PDF.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON, refusals included.")
@click.option(
    "--roots",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM file of the roots to trust instead of IMAGING_TRUST_ROOTS.",
)
@click.option("--at", "moment", default=None, help="Check the certificates as of this ISO 8601 time.")
def verify_pdf(pdf: str, password: str | None, as_json: bool, roots: Path | None, moment: str | None) -> None:
    """Check a PDF's signatures and document timestamps: intact, signer, certification, changes since,
    timestamp, trust in the configured roots, and each failure's reason.
    Exit 0 if every signature holds, 1 if one does not, 2 if the file cannot be read or opened."""
    from errors import BadInput
    from esign.verify import as_json as json_text
    from esign.verify import describe, load_roots, verify

    try:
        roots_path = roots or load_settings().trust_roots_path  # a bad setting is a refusal too
        at = _moment(moment)
        if roots is not None and not roots.is_file():
            raise BadInput(f"--roots {roots}: no such file")
        try:
            data = Path(pdf).read_bytes()
        except OSError as exc:
            raise BadInput(f"{pdf}: cannot read: {exc.strerror}") from None
        result = verify(data, load_roots(roots_path), password, at)
    except ImagingError as exc:
        if as_json:
            click.echo(json_text({"ok": False, "error": exc.error, "message": exc.message}))
        click.echo(f"imaging: {exc.message}", err=True)
        sys.exit(int(exc.exit_code))
    if as_json:
        click.echo(json_text({**result.to_json(), "roots_file": str(roots_path)}))
    else:
        click.echo("\n".join(describe(result, str(roots_path))))
        click.echo("the PDF's signatures hold" if result.ok else "the PDF's signatures do NOT hold", err=True)
    sys.exit(0 if result.ok else int(ExitCode.error))


def _moment(text: str | None):
    """Return the time --at names (UTC if it names no zone), or None for now; BadInput if it is no time."""
    from datetime import UTC, datetime

    from errors import BadInput

    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--at {text!r} is not an ISO 8601 time such as 2026-11-30T12:00:00+08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@imaging.group()
def samples() -> None:
    """Generated specimens for tests, benchmarks and template tuning."""


def _values(path: str | None) -> dict[str, str]:
    import json
    from pathlib import Path

    from errors import BadInput

    source = Path(path) if path else Path(__file__).with_name("capture") / "sample_values.json"
    try:
        values = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{source}: cannot read the values ({exc})") from None
    if not isinstance(values, dict):
        raise BadInput(f"{source}: the values must be a JSON object of field name to text")
    return {str(k): str(v) for k, v in values.items() if v is not None}


def _write_image(image, dpi: float, out: str) -> None:
    from pathlib import Path

    from capture.render import encode_image

    suffix = Path(out).suffix.lower()
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix)
    if fmt is None:
        raise click.BadParameter(
            f"{out}: give a .png, .jpg or .tif file (or .pdf where offered)", param_hint="--out"
        )
    Path(out).write_bytes(encode_image(image, dpi, fmt))


_FONT_HELP = "Print the values in this CJK face (printing.FACES: uming, ukai, zenhei, noto-sans, ...)."


def _face(font: str | None) -> str | None:
    """Return the face named by --font, checked: known and installed."""
    from errors import BadInput
    from printing import FontMissing, font_file

    if font is not None:
        try:
            font_file(font)
        except FontMissing as exc:
            raise BadInput(str(exc)) from None
    return font


@samples.command("form")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of field values.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".png/.jpg/.tif page, or .pdf.")
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
@click.option("--font", help=_FONT_HELP)
def samples_form(values_path: str | None, out: str, dpi: int, font: str | None) -> None:
    """The application form filled with VALUES: a clean page image, or a born-digital PDF."""
    _write_form("application_form", _values(values_path), out, dpi, _face(font))


@samples.command("idcard")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of card values.")
@click.option("--side", type=click.Choice(["front", "back"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
@click.option("--font", help=_FONT_HELP)
def samples_idcard(values_path: str | None, side: str, out: str, dpi: int, font: str | None) -> None:
    """A specimen ID card side (样本) at its true size, 85.6 x 54 mm."""
    from capture.render import render_idcard
    from capture.templates import latest
    from errors import BadInput

    face = _face(font)
    try:
        image = render_idcard(latest(f"idcard_{side}"), _values(values_path), dpi, face)
    except ValueError as exc:
        raise BadInput(f"bad card value: {exc} (dates are YYYY-MM-DD)") from None
    _write_image(image, dpi, out)


def _claim_sample(part: str, values_path: str | None) -> dict[str, str]:
    """Return the values of one part of the bundled sample claim (or those of --values)."""
    import random

    from capture.specimens import claim_values

    if values_path:
        return _values(values_path)
    claim = claim_values(random.Random(2026))
    return claim["invoices"][0] if part == "invoices" else claim[part]


@samples.command("claim-form")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of field values.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".png/.jpg/.tif page, or .pdf.")
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_claim_form(values_path: str | None, out: str, dpi: int) -> None:
    """The claim application form (理赔申请书) filled with VALUES (default: a sample claim's)."""
    _write_form("claim_form", _claim_sample("claim_form", values_path), out, dpi)


@samples.command("invoice")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of field values.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".png/.jpg/.tif page, or .pdf.")
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_invoice(values_path: str | None, out: str, dpi: int) -> None:
    """A medical invoice (医疗收费票据) filled with VALUES (default: a sample claim's first invoice)."""
    _write_form("medical_invoice", _claim_sample("invoices", values_path), out, dpi)


@samples.command("bank-card")
@click.option(
    "--values", "values_path", type=click.Path(dir_okay=False), help="JSON: bank_name, card_number."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_bank_card(values_path: str | None, out: str, dpi: int) -> None:
    """A specimen bank card (样本) at its true size, 85.6 x 54 mm."""
    from capture.render import render_bank_card
    from capture.templates import latest

    _write_image(
        render_bank_card(latest("bank_card"), _claim_sample("bank_card", values_path), dpi), dpi, out
    )


def _write_form(
    template_type: str, values: dict[str, str], out: str, dpi: int, face: str | None = None
) -> None:
    """Write a form of the template type filled with values: a page image (its values in face, ours when
    None), or a born-digital PDF."""
    from pathlib import Path

    from capture.render import render_form, render_form_pdf
    from capture.templates import latest
    from errors import BadInput

    template = latest(template_type)
    if out.lower().endswith(".pdf"):
        if face is not None:
            raise BadInput("--font is for page images (.png/.jpg/.tif): the PDF embeds the print font only")
        Path(out).write_bytes(render_form_pdf(template, values))
    else:
        _write_image(render_form(template, values, dpi, face), dpi, out)


@samples.command("epolicy")
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="Where to write the JSON request."
)
def samples_epolicy(out: str) -> None:
    """Write a complete example e-policy request (POST /v1/epolicies)."""
    from esign.epolicy import sample_request

    Path(out).write_text(sample_request().model_dump_json(indent=2) + "\n", encoding="utf-8")
    click.echo(out)


@samples.command("separator")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".png/.jpg/.tif, or .pdf.")
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_separator(out: str, dpi: int) -> None:
    """The batch separator sheet."""
    from pathlib import Path

    from capture.render import render_separator, render_separator_pdf

    if out.lower().endswith(".pdf"):
        Path(out).write_bytes(render_separator_pdf())
    else:
        _write_image(render_separator(dpi), dpi, out)


@imaging.command("capture")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, one per line.")
@click.option(
    "--debug-dir", type=click.Path(file_okay=False), help="Write each page with its field boxes drawn."
)
def capture_files(files: tuple[str, ...], as_json: bool, debug_dir: str | None) -> None:
    """Run capture on files in this process and report the documents found."""
    import json
    from pathlib import Path

    from capture.debug import draw_boxes
    from capture.decode import decode
    from capture.pipeline import capture
    from capture.render import encode_image
    from errors import BadInput
    from ocr.pipeline import read_document
    from ocr.tesseract import orientation

    failed = 0
    for name in files:
        try:
            pages = decode(Path(name).read_bytes())
        except (OSError, BadInput) as exc:
            failed += 1
            message = exc.message if isinstance(exc, BadInput) else f"cannot read: {exc.strerror}"
            click.echo(
                json.dumps({"file": name, "error": message}, ensure_ascii=False)
                if as_json
                else f"{name}: {message}"
            )
            continue
        reports: list = []
        documents = capture(pages, reports, orientation)
        decisions = [read_document(d) for d in documents]
        if as_json:
            out = []
            for d, decided in zip(documents, decisions, strict=True):
                record = d.to_json()
                for field, decision in decided.items():
                    record["fields"][field].update(decision.to_json())
                out.append(record)
            listed = [r.to_json() for r in reports]
            click.echo(json.dumps({"file": name, "documents": out, "pages": listed}, ensure_ascii=False))
        else:
            for d, decided in zip(documents, decisions, strict=True):
                status = d.status if not d.problems else f"{d.status}: {'; '.join(d.problems)}"
                click.echo(f"{name}: {d.type} pages {d.pages} {len(d.fields)} fields ({status})")
                for field, decision in decided.items():
                    shown = decision.value if decision.value is not None else f"[{decision.suggestion or ''}]"
                    why = f"  <- {'; '.join(decision.reasons)}" if decision.reasons else ""
                    click.echo(f"  {field:24} {decision.status:9} {decision.confidence:5.1f}  {shown}{why}")
            for r in reports:
                if r.outcome != "document" or r.notes or r.passed_over:
                    said = "; ".join(filter(None, [r.reason, *r.notes, *r.passed_over]))
                    click.echo(f"{name}: page {r.number} {r.outcome}" + (f" ({said})" if said else ""))
        if debug_dir:
            Path(debug_dir).mkdir(parents=True, exist_ok=True)
            for page in pages:
                if page.refused is not None:
                    continue
                picture = draw_boxes(page.image, page.number, documents)
                (Path(debug_dir) / f"{Path(name).stem}-page{page.number}.png").write_bytes(
                    encode_image(picture, 72)
                )
    if failed:
        sys.exit(int(ExitCode.bad_input))


@imaging.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--watch",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A scanner station's folder: each batch it writes sent as one scan, then moved to done/ or failed/.",
)
@click.option("--each", is_flag=True, help="One scan per file (stacks in a folder), not all files as one.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per scan, for machines.")
@click.option("--mode", type=click.Choice(["immediate", "batch"]), default="batch", show_default=True)
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The service's address.")
@click.option(
    "--key", envvar="IMAGING_API_KEY", required=True, help="A scanner API token or key (or IMAGING_API_KEY)."
)
@click.option("--policy-no")
@click.option("--customer-id")
@click.option("--claim-no")
@click.option("--stage", type=click.Choice(["new_business", "underwriting", "servicing", "claims"]))
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=120,
    show_default=True,
    help="Seconds to follow each scan's capture; 0: upload only.",
)
@click.option(
    "--settle",
    type=click.FloatRange(0.1, 600),
    default=2.0,
    show_default=True,
    help="--watch: seconds a batch's files must stay the same size before it is sent.",
)
def scan_upload(
    paths, folder, each, as_json, mode, url, key, policy_no, customer_id, claim_no, stage, wait, settle
):
    """Send scanned files as one scan (a form and its card pages together), follow its capture and say,
    in Chinese, each document found, each field read or sent to key-entry, and any page to scan again.

    \b
    Exit codes (the first that applies, over all scans sent):
      3  the service cannot be reached or is unavailable (503)
      2  a file was refused (named with why) or could not be read
      4  a rescan is asked for (the page and what to do are printed)
      5  not read within --wait (the scan goes on; its status URL is printed)
      0  every file sent and read, nothing to scan again
    """
    import json
    import signal
    import threading

    from rich.console import Console

    import station

    if bool(paths) == bool(folder):
        raise click.UsageError("name the files or folders to send, or --watch a folder (not both)")
    station.quiet_http_logs()
    form = {k: v for k, v in {"mode": mode, "policy_no": policy_no, "customer_id": customer_id,
                              "claim_no": claim_no, "stage": stage}.items() if v}  # fmt: skip
    console = Console(stderr=True)
    client = station.connect(url, key)

    def tell(outcome: station.Outcome) -> station.Outcome:
        text = (
            json.dumps(outcome.to_json(), ensure_ascii=False)
            if as_json
            else "\n".join(station.summary(outcome))
        )
        click.echo(text)
        return outcome

    def handle(files: list[Path]) -> station.Outcome:
        return tell(station.send(client, *station.gather(files), form, wait, console))

    with client:
        if folder:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            console.print(f"监视 {folder}：每批文件稳定 {settle} 秒后发送（Ctrl-C 停止）")
            station.watch(folder, handle, settle, stop, console.print)
            return
        if not each:
            sys.exit(int(handle(list(paths)).code))
        # One scan per file: every file sent first, so the workers read them side by side, then followed.
        sendable, refused = station.gather(paths)
        sent = [station.Outcome([], refused, code=ExitCode.bad_input)] if refused else []
        for path in sendable:
            sent.append(station.upload(client, [path], [], form, console))
            if sent[-1].code == ExitCode.dependency_down:
                break  # the service is away: the other files would fare no better
        codes = [tell(station.follow(client, outcome, wait, console)).code for outcome in sent]
    sys.exit(int(max(codes, key=station.RANK.index)))


def _people():
    """Return the store and Redis of this data dir or deployment, and who is making the change."""
    import getpass

    import queues
    from storage import open_store

    settings = load_settings()
    return settings, open_store(settings), queues.connect(settings.redis_target), f"cli:{getpass.getuser()}"


def _password(password_file: str | None, confirm: bool = True) -> str:
    if password_file:
        return Path(password_file).read_text(encoding="utf-8").rstrip("\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=confirm)


ROLE_CHOICE = click.Choice(
    ["scanner", "keyer", "underwriter", "servicing", "claims", "sales", "admin", "auditor", "manager"]
)


@imaging.group()
def users() -> None:
    """Staff accounts (local, with argon2 passwords): add, list, lock, unlock, reset."""


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=ROLE_CHOICE, help="Repeat for several.")
@click.option("--branch", required=True, help="The branch (机构 code) the person works for.")
@click.option("--name", default=None, help="The person's name (default: the username).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False), help="Read the password here.")
def users_add(
    username: str, roles: tuple[str, ...], branch: str, name: str | None, password_file: str | None
) -> None:
    """Make a local account; the password is asked for (twice) unless --password-file gives it."""
    from people import changes
    from roles import Role

    _, store, conn, by = _people()
    password = _password(password_file)
    account = changes.add_user(
        store, conn, by, username, name or username, [Role(r) for r in roles], branch, password
    )
    click.echo(f"{account.username}\t{','.join(account.roles)}\t{account.branch}\t{account.state}")


@users.command("list")
def users_list() -> None:
    """List every local account: username, roles, branch, state, name."""
    from people import accounts

    _, store, _, _ = _people()
    found = accounts.every(store)
    for a in found:
        click.echo(f"{a.username}\t{','.join(a.roles)}\t{a.branch}\t{a.state}\t{a.name}")
    click.echo(f"{len(found)} account(s)", err=True)


@users.command("lock")
@click.argument("username")
def users_lock(username: str) -> None:
    """Lock an account: no sign-in, its sessions end, its personal tokens stop."""
    from people import changes

    _, store, conn, by = _people()
    click.echo(f"{changes.lock_user(store, conn, by, username).username}\tlocked")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Unlock an account (also one locked by bad passwords)."""
    from people import changes

    _, store, conn, by = _people()
    click.echo(f"{changes.unlock_user(store, conn, by, username).username}\tactive")


@users.command("reset")
@click.argument("username")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False), help="Read the password here.")
def users_reset(username: str, password_file: str | None) -> None:
    """Set a new password (asked for, or from --password-file); the account's sessions end."""
    from people import changes

    _, store, conn, by = _people()
    account = changes.reset_user(store, conn, by, username, _password(password_file))
    click.echo(f"{account.username}\tpassword reset")


@users.command("roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=ROLE_CHOICE, help="Repeat for several.")
@click.option("--branch", default=None, help="A new branch (机构 code), if it changes.")
def users_roles(username: str, roles: tuple[str, ...], branch: str | None) -> None:
    """Replace an account's roles (and branch); its sessions end, so the change holds at once."""
    from people import changes
    from roles import Role

    _, store, conn, by = _people()
    account = changes.set_user_roles(store, conn, by, username, [Role(r) for r in roles], branch)
    click.echo(f"{account.username}\t{','.join(account.roles)}\t{account.branch}")


@imaging.group()
def tokens() -> None:
    """API tokens for machines and integrations: add, list, revoke."""


@tokens.command("add")
@click.argument("owner")
@click.option("--service", is_flag=True, help="A machine's token (OWNER is its name), not a person's.")
@click.option("--role", "roles", multiple=True, required=True, type=ROLE_CHOICE, help="Repeat for several.")
@click.option("--branch", default=None, help="Service tokens: the branch the machine works for.")
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Lifetime (IMAGING_TOKEN_DAYS).")
@click.option("--label", default="", help="What it is for, for the list.")
def tokens_add(
    owner: str, service: bool, roles: tuple[str, ...], branch: str | None, days, label: str
) -> None:
    """Make a token and print it once (only its hash is kept)."""
    from people import changes
    from people.tokens import TokenKind
    from roles import Role

    settings, store, conn, by = _people()
    kind = TokenKind.service if service else TokenKind.personal
    secret, record = changes.add_token(
        store, conn, by, kind=kind, owner=owner, roles=[Role(r) for r in roles], branch=branch,
        days=days or settings.token_days, label=label,
    )  # fmt: skip
    click.echo(secret)
    click.echo(
        f"token {record.token_id} for {owner}, until {record.expires_at:%Y-%m-%d}: shown this once", err=True
    )


@tokens.command("list")
def tokens_list() -> None:
    """List tokens: id, kind, owner, roles, branch, expiry, revoked."""
    from people import tokens as api_tokens

    _, store, _, _ = _people()
    found = api_tokens.every(store)
    for t in found:
        revoked = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "live"
        click.echo(
            f"{t.token_id}\t{t.kind}\t{t.owner}\t{','.join(t.roles)}\t{t.branch}\t{t.expires_at:%Y-%m-%d}\t{revoked}"
        )
    click.echo(f"{len(found)} token(s)", err=True)


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token: every API process refuses it within a second."""
    from people import changes

    _, store, conn, by = _people()
    click.echo(f"{changes.revoke_token(store, conn, by, token_id).token_id}\trevoked")


@imaging.group()
def audit() -> None:
    """The audit trail: archive it into the store, or read it."""


@audit.command("archive")
def audit_archive() -> None:
    """Move the audit entries from Redis into the object store now (workers do it every minute)."""
    from people import audit as trail

    _, store, conn, _ = _people()
    click.echo(f"{trail.archive(conn, store)} entries archived", err=True)


@audit.command("query")
@click.option("--person", default=None)
@click.option("--customer-id", default=None)
@click.option("--since", type=click.DateTime(), default=None, help="UTC")
def audit_query(person: str | None, customer_id: str | None, since) -> None:
    """Print the matching events as JSON lines, oldest first."""
    from datetime import UTC

    from people import audit as trail

    _, store, conn, _ = _people()
    customer = store.private_name(customer_id.strip().upper()) if customer_id else None
    since = since.replace(tzinfo=UTC) if since else None
    click.echo(
        trail.dump(trail.query(conn, store, person=person, customer=customer, since=since, limit=10**9)),
        nl=False,
    )


def main() -> None:
    import idnumber
    import logs
    from esign.tokens import HideLinks

    try:
        style = load_settings().log_format
    except ImagingError:
        style = "human"  # the command reports the bad setting itself
    # ID numbers never reach a log whole, nor customers' link tokens at all: filtered on the one handler
    # every logger sends to (uvicorn's and RQ's too), and on uvicorn's loggers should they get their own.
    logs.setup(style, [idnumber.MaskIdNumbers(), HideLinks()])
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(idnumber.MaskIdNumbers())
        logging.getLogger(name).addFilter(HideLinks())
    try:
        imaging(standalone_mode=True)
    except ImagingError as exc:
        click.echo(f"imaging: {exc.message}", err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.interrupted))


if __name__ == "__main__":
    main()
