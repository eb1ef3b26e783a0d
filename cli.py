"""``imaging``: one entry point for people running the service."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from errors import ExitCode, ImagingError
from settings import load_settings


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
        proxy_headers=bool(settings.proxies),
        forwarded_allow_ips=settings.proxies or None,
    )


@imaging.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name, unique across machines (default: random).")
def worker(burst: bool, name: str | None) -> None:
    """Run one worker on the queues immediate, esign, mail, batch (in that order)."""
    os.umask(0o077)  # what the worker writes (local store, outbox, keys) is for the service only
    import worker as worker_module

    worker_module.run(load_settings(), burst=burst, name=name)


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
@click.argument("pdf", type=click.Path(exists=True, dir_okay=False))
@click.option("--password", default=None, help="The password of an encrypted PDF.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_pdf(pdf: str, password: str | None, as_json: bool) -> None:
    """Check a PDF's signatures: intact, certified with no disallowed change, signer, time, trust.
    Exit 0 if every signature holds, 1 if not."""
    import json

    from esign.verify import load_roots, verify

    settings = load_settings()
    result = verify(Path(pdf).read_bytes(), load_roots(settings.trust_roots_path), password)
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str, ensure_ascii=False, indent=1))
    else:
        for s in result.signatures:
            click.echo(f"signature {s.field}: {'VALID' if s.ok else 'INVALID'}")
            click.echo(f"  signer: {s.signer}")
            click.echo(f"  intact: {s.intact}  valid: {s.valid}  trusted: {s.trusted}")
            click.echo(f"  certified: {s.certified}  changes after signing: {s.modification_level}")
            click.echo(f"  signing time: {s.signing_time}  timestamp: {s.timestamp or 'none'}")
            for problem in s.problems:
                click.echo(f"  problem: {problem}")
        for problem in result.problems:
            click.echo(f"problem: {problem}")
        click.echo("the PDF's signatures hold" if result.ok else "the PDF's signatures do NOT hold", err=True)
    sys.exit(0 if result.ok else int(ExitCode.error))


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


@samples.command("form")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of field values.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".png/.jpg/.tif page, or .pdf.")
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_form(values_path: str | None, out: str, dpi: int) -> None:
    """The application form filled with VALUES: a clean page image, or a born-digital PDF."""
    from pathlib import Path

    from capture.render import render_form, render_form_pdf
    from capture.templates import latest

    template, values = latest("application_form"), _values(values_path)
    if out.lower().endswith(".pdf"):
        Path(out).write_bytes(render_form_pdf(template, values))
    else:
        _write_image(render_form(template, values, dpi), dpi, out)


@samples.command("idcard")
@click.option("--values", "values_path", type=click.Path(dir_okay=False), help="JSON of card values.")
@click.option("--side", type=click.Choice(["front", "back"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--dpi", type=click.IntRange(72, 1200), default=300, show_default=True)
def samples_idcard(values_path: str | None, side: str, out: str, dpi: int) -> None:
    """A specimen ID card side (样本) at its true size, 85.6 x 54 mm."""
    from capture.render import render_idcard
    from capture.templates import latest
    from errors import BadInput

    try:
        image = render_idcard(latest(f"idcard_{side}"), _values(values_path), dpi)
    except ValueError as exc:
        raise BadInput(f"bad card value: {exc} (dates are YYYY-MM-DD)") from None
    _write_image(image, dpi, out)


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
        documents = capture(pages)
        decisions = [read_document(d) for d in documents]
        if as_json:
            out = []
            for d, decided in zip(documents, decisions, strict=True):
                record = d.to_json()
                for field, decision in decided.items():
                    record["fields"][field].update(decision.to_json())
                out.append(record)
            click.echo(json.dumps({"file": name, "documents": out}, ensure_ascii=False))
        else:
            for d, decided in zip(documents, decisions, strict=True):
                status = d.status if not d.problems else f"{d.status}: {'; '.join(d.problems)}"
                click.echo(f"{name}: {d.type} pages {d.pages} {len(d.fields)} fields ({status})")
                for field, decision in decided.items():
                    shown = decision.value if decision.value is not None else f"[{decision.suggestion or ''}]"
                    why = f"  <- {'; '.join(decision.reasons)}" if decision.reasons else ""
                    click.echo(f"  {field:24} {decision.status:9} {decision.confidence:5.1f}  {shown}{why}")
        if debug_dir:
            Path(debug_dir).mkdir(parents=True, exist_ok=True)
            for page in pages:
                picture = draw_boxes(page.image, page.number, documents)
                (Path(debug_dir) / f"{Path(name).stem}-page{page.number}.png").write_bytes(
                    encode_image(picture, 72)
                )
    if failed:
        sys.exit(int(ExitCode.bad_input))


@imaging.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--mode", type=click.Choice(["immediate", "batch"]), default="batch", show_default=True)
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The service's address.")
@click.option(
    "--key", envvar="IMAGING_API_KEY", required=True, help="A scanner API key (or IMAGING_API_KEY)."
)
@click.option("--policy-no")
@click.option("--customer-id")
@click.option("--claim-no")
@click.option("--stage", type=click.Choice(["new_business", "underwriting", "servicing", "claims"]))
@click.option(
    "--wait", type=float, default=0, help="Immediate mode: wait up to this many seconds for the result."
)
def scan_upload(paths, mode, url, key, policy_no, customer_id, claim_no, stage, wait) -> None:
    """Upload scanned files, or every scan in the given folders, one scan per file, with a progress bar."""
    import json

    import httpx

    from errors import DependencyDown

    suffixes = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
    files = []
    for path in map(Path, paths):
        files += (
            sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes) if path.is_dir() else [path]
        )
    if not files:
        raise click.UsageError(f"no scans ({', '.join(sorted(suffixes))}) in {', '.join(paths)}")
    form = {k: v for k, v in {"mode": mode, "policy_no": policy_no, "customer_id": customer_id,
                              "claim_no": claim_no, "stage": stage}.items() if v}  # fmt: skip
    failed = 0
    params = {"wait": wait} if wait else {}
    client = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60 + wait)
    bar = click.progressbar(files, label=f"uploading {len(files)} files", file=sys.stderr)
    with client, bar:
        for path in bar:
            try:
                response = client.post(
                    "/v1/scans", params=params, data=form, files={"file": (path.name, path.read_bytes())}
                )
            except httpx.HTTPError as exc:
                raise DependencyDown(f"cannot reach {url}: {exc}") from exc
            body = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            if response.status_code >= 400:
                failed += 1
                click.echo(f"\n{path}: {response.status_code} {body.get('detail', response.text)}", err=True)
                if response.status_code in (401, 403, 503):
                    break
                continue
            click.echo(json.dumps({"file": str(path), **body}, ensure_ascii=False))
    if failed:
        sys.exit(int(ExitCode.bad_input))


def main() -> None:
    import idnumber
    from esign.tokens import HideLinks

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # ID numbers never reach a log whole, nor customers' link tokens at all: filtered on every handler,
    # and on uvicorn's loggers (own handlers).
    for handler in logging.getLogger().handlers:
        handler.addFilter(idnumber.MaskIdNumbers())
        handler.addFilter(HideLinks())
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
