"""``imaging``: one entry point for people running the service."""

from __future__ import annotations

import logging
import sys

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
    import uvicorn

    from api import create_app

    settings = load_settings()
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port, log_level="info")


@imaging.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name, unique across machines (default: random).")
def worker(burst: bool, name: str | None) -> None:
    """Run one worker on the queues immediate, esign, mail, batch (in that order)."""
    import worker as worker_module

    worker_module.run(load_settings(), burst=burst, name=name)


@imaging.group()
def jobs() -> None:
    """Jobs that failed for good: list them, put them back."""


@jobs.command("failed")
def jobs_failed() -> None:
    """List failed jobs, oldest first."""
    import worker as worker_module

    conn = worker_module.connect(load_settings().redis_url)
    failed = worker_module.failed_jobs(conn)
    for f in failed:
        click.echo(f"{f.job_id}\t{f.queue}\t{f.func}\t{f.ended_at}\t{f.error}")
    click.echo(f"{len(failed)} failed job(s)", err=True)


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], all_: bool) -> None:
    """Put failed jobs back on their queues."""
    import worker as worker_module

    if not job_ids and not all_:
        raise click.UsageError("name the job ids to requeue, or pass --all")
    conn = worker_module.connect(load_settings().redis_url)
    ids = [f.job_id for f in worker_module.failed_jobs(conn)] if all_ else list(job_ids)
    done = worker_module.requeue(conn, ids)
    for job_id in done:
        click.echo(job_id)
    missing = sorted(set(ids) - set(done))
    if missing:
        click.echo(f"not in a failed registry: {', '.join(missing)}", err=True)
    click.echo(f"{len(done)} job(s) requeued", err=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        imaging(standalone_mode=True)
    except ImagingError as exc:
        click.echo(f"imaging: {exc.message}", err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.interrupted))


if __name__ == "__main__":
    main()
