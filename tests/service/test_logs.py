"""Log lines: JSON objects with their fields, and secrets blanked whatever a message says."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, SecretStr

from syncd.logs import REDACTED, JsonFormatter, SecretFilter, TextFormatter, secrets_of


class MailSettings(BaseModel):
    host: str
    username: str
    password: SecretStr
    api_token: str = ""


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, SecretFilter]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    secrets = SecretFilter()
    handler.addFilter(secrets)
    logger = logging.getLogger("tests.service.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, secrets
    logger.removeHandler(handler)


def test_json_lines_carry_the_fields_given_as_extra(
    captured: tuple[logging.Logger, io.StringIO, SecretFilter],
) -> None:
    logger, stream, _ = captured
    logger.info("%s: ok", "people", extra={"mapping": "people", "counts": {"created": 2}})
    doc = json.loads(stream.getvalue())
    assert doc["message"] == "people: ok"
    assert doc["level"] == "info" and doc["mapping"] == "people" and doc["counts"] == {"created": 2}


def test_secret_values_of_the_config_are_blanked_in_messages(
    captured: tuple[logging.Logger, io.StringIO, SecretFilter],
) -> None:
    logger, stream, secrets = captured
    settings = MailSettings(
        host="mail.example", username="ops", password=SecretStr("hunter2-pw"), api_token="tok-123456"
    )
    secrets.set_secrets(secrets_of([settings]))
    logger.warning("login as ops with %s failed (token %s)", "hunter2-pw", "tok-123456")
    text = stream.getvalue()
    assert "hunter2-pw" not in text and "tok-123456" not in text
    assert json.loads(text)["message"] == f"login as ops with {REDACTED} failed (token {REDACTED})"


def test_plain_settings_are_not_mistaken_for_secrets() -> None:
    settings = MailSettings(host="mail.example", username="ops", password=SecretStr("hunter2-pw"))
    assert secrets_of([settings]) == ["hunter2-pw"]


def test_text_lines_hide_tracebacks_unless_debugging() -> None:
    formatter = TextFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info()
        )
    line = formatter.format(record)
    assert "failed" in line and "Traceback" not in line and "ValueError" in line
