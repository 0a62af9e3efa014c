"""Process logging: one JSON object per line (or plain text for people at a terminal)."""

from __future__ import annotations

import logging.config
from typing import Any, Final

from service.settings import Settings

FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: every record, gunicorn's own included, to
    stderr in the configured format."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": FORMAT,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if settings.log_format == "json"
        else {"format": FORMAT}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "troth", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"troth": formatter},
        # gunicorn's defaults name these two handlers; its config merges this dictionary
        # over them, so both must be given here.
        "handlers": {"console": handler, "error_console": handler},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            # The app logs each request itself, without the query string gunicorn would log.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # The scheduler's jobs run every second: only what goes wrong (a failed or
            # skipped run) is worth a line.
            "apscheduler": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Send every log record to stderr in the configured format (called once per process)."""
    logging.config.dictConfig(logging_config(settings))
