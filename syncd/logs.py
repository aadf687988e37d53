"""Log output: readable lines on a terminal, one JSON object per line under a service manager.

JSON lines let journald, Docker and log shippers keep the fields (mapping, outcome, counts)
without parsing prose. Whatever the format, a filter blanks out every secret value the config
resolved, as a last line of defence behind the rule that messages never carry them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, SecretBytes, SecretStr

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(r"pass|secret|token|private|credential|api_?key", re.IGNORECASE)
REDACTED = "***"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["error_type"] = record.exc_info[0].__name__
            if record.levelno <= logging.DEBUG or logging.getLogger().isEnabledFor(logging.DEBUG):
                doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message`; tracebacks only when debugging, since they can be long."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def formatException(self, ei: Any) -> str:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return super().formatException(ei)
        return f"({ei[0].__name__}; run with -vv for the traceback)"


class SecretFilter(logging.Filter):
    """Replaces known secret values in every message with ***.

    Secrets are collected from the connection settings the config resolved (`${ENV}` and `file:`
    values land there): SecretStr fields, and string fields whose name says password, token, secret,
    private key or API key.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def set_secrets(self, values: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is blanked whole.
        self.secrets = tuple(sorted({v for v in values if len(v) >= 4}, key=len, reverse=True))

    def add_secrets(self, values: Iterable[str]) -> None:
        """Blank these too, keeping the ones known already (every loaded config adds its own)."""
        self.set_secrets([*self.secrets, *values])

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def secrets_of(settings: Iterable[BaseModel]) -> list[str]:
    """The secret values held by these settings models (see SecretFilter)."""
    found: list[str] = []

    def visit(name: str, value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, SecretBytes):
            found.append(value.get_secret_value().decode("utf-8", "replace"))
        elif isinstance(value, BaseModel):
            for field_name in type(value).model_fields:
                visit(field_name, getattr(value, field_name))
        elif isinstance(value, dict):
            for k, v in value.items():
                visit(str(k), v)
        elif isinstance(value, str) and value and _SECRET_NAME.search(name):
            found.append(value)

    for model in settings:
        visit("", model)
    return found


secret_filter = SecretFilter()


def setup_logging(level: int, fmt: LogFormat) -> None:
    """Route every logger to stderr in the chosen format, through the secret filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
