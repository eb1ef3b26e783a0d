"""What never reaches a log whole: a logging filter that passes a record's message, its arguments and its
traceback through one function (idnumber.py masks ID numbers and names, esign/tokens.py hides customers'
links). `imaging` installs both on every handler and on uvicorn's own loggers (cli.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable


class Redact(logging.Filter):
    """A logging filter that rewrites the message, its arguments (uvicorn's access log passes the URL as
    one, so they stay a tuple of the same length) and its traceback (an exception may quote a value)."""

    def __init__(self, hide: Callable[[str], str]) -> None:
        super().__init__()
        self.hide = hide

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.hide(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.hide(a) if isinstance(a, str) else a for a in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.hide(record.exc_text)
        return True
