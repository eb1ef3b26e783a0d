"""How the service logs: human lines by default, one JSON object a line as an option (IMAGING_LOG_FORMAT),
each carrying the request id, job id and scan id of the work in hand, and never an ID number whole nor a
customer's link (the redaction filters, installed on every handler here).

The ids travel in context variables: the API sets the request id per request (routes/request_id.py),
queues.enqueue copies it into the job's meta, and the worker sets all three around each job
(metrics.job_observed), so one upload's lines can be followed from the API into the worker.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # what we accept from a client's X-Request-ID
CONTEXT = ("request_id", "job_id", "scan_id")
_context: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in CONTEXT}
HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


def current(name: str) -> str | None:
    """Return the request id, job id or scan id of the work in hand, if any."""
    return _context[name].get()


def set_request_id(value: str) -> None:
    _context["request_id"].set(value)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Within the block, every log line carries these ids (request_id, job_id, scan_id)."""
    tokens = [(_context[k], _context[k].set(v)) for k, v in ids.items() if k in _context and v]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def for_job(job) -> AbstractContextManager[None]:
    """Return a block within which log lines carry an RQ job's ids: the request that queued it (its meta),
    its own, and its scan's for a capture."""
    scan_id = job.args[0] if job.func_name.endswith("capture_scan") and job.args else None
    return bound(request_id=job.meta.get("request_id"), job_id=job.id, scan_id=scan_id)


class WithContext(logging.Filter):
    """Put the ids of the work in hand on each record: as attributes, and as ``context`` for human lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        shown = []
        for name in CONTEXT:
            value = getattr(record, name, None) or _context[name].get()
            setattr(record, name, value)
            if value:
                shown.append(f"{name.removesuffix('_id')}={value}")
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, process, logger, the ids, event (the message) and any
    traceback, already redacted by the handler's filters."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": record.process,
            "logger": record.name,
            **{name: getattr(record, name, None) for name in CONTEXT if getattr(record, name, None)},
            "event": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            line["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup(style: str, redactions: list[logging.Filter]) -> None:
    """Log to stderr as ``human`` lines or ``json`` objects, through the redaction filters; uvicorn's and
    RQ's loggers send their lines here too (they propagate to the root), so every line has one shape."""
    handler = logging.StreamHandler()
    for f in [*redactions, WithContext()]:
        handler.addFilter(f)
    handler.setFormatter(JsonLines() if style == "json" else logging.Formatter(HUMAN))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
