"""Log lines for machines: one JSON object per event, on one line.

Used by LOGGING (LOG_FORMAT=json, the default with DEBUG off) and by gunicorn's
own loggers (gunicorn.conf.py), so that a log shipper reads every line of the
site's output the same way. A traceback stays inside its event's line, as an
escaped string, instead of spilling over many lines.

Nothing here masks anything: the call sites never log a code, and log phone
numbers only through `accounts.phone.mask_phone_number`.
"""

from __future__ import annotations

import datetime
import json
import logging

# Attributes every LogRecord has; anything else on a record came from
# `extra=` and is written as a field of its own.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}


# The formatters of every logging configuration here (Django's LOGGING and
# gunicorn's logconfig_dict), so that both write the same lines.
FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    "json": {"()": "passwordless.logging.JSONFormatter"},
}


class JSONFormatter(logging.Formatter):
    """Format a record as one line of JSON: time, level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a request object or a Decimal in `extra` must not cost
        # the line. JSON escapes newlines, so the event stays on one line.
        return json.dumps(entry, default=str)


class SkipPath(logging.Filter):
    """Drop gunicorn's access lines for one path (`path`): /healthz, asked every few seconds.

    gunicorn logs an access line with its atoms as the record's arguments;
    "U" is the path without the query string.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, dict) and args.get("U") == self.path)
