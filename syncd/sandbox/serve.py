"""All the stand-ins at once: Salesforce, Google Sheets, IMAP and SMTP, for `syncd sandbox` and the demo.

`Sandboxes` starts them on loopback, says how to reach each (`info()`, the JSON line `syncd sandbox
--json` prints first), and stops them. With `data_dir` each stand-in keeps its state in a folder of
its own under it (`salesforce/`, `sheets/`, `mail/`), so a second run finds the records, sheets and
mail of the first, and the same CA files and credentials, so a config written for the first run
still works. Without it everything lives in a temporary folder removed at `stop()`.

A seed file is YAML with up to three sections, each in its stand-in's own seed shape:

    salesforce: {objects: {Account: {records: [...]}, Thing__c: {fields: {...}}}}
    sheets: {"Client roster": {Clients: [[Name, Email], [Acme, ops@acme.example]]}}
    mail: {INBOX: [welcome.eml, ...]}        # message files, relative to the seed file

Seed records, sheets and mail are loaded on the first run of a data folder only; the seed file is
kept in the folder, so later runs without `--seed` still know the custom objects it declares.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from syncd.errors import ConfigError
from syncd.sandbox.mail import MailSandbox
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox

SERVICES = ("salesforce", "sheets", "imap", "smtp")
"""In port order: with a port base N, service i listens on N + i."""

_SAVED_SEED = "seed.yaml"
_SECTIONS = {"salesforce", "sheets", "mail"}


class Sandboxes:
    """The four stand-ins as one unit: construct, `start()`, `info()`, `stop()` (or use `with`)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port_base: int | None = None,
        seed: Path | None = None,
        mail_tls: bool = False,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="syncd-sandbox-")
            data_dir = Path(self._tmp.name)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {name: (port_base + i if port_base else 0) for i, name in enumerate(SERVICES)}
        self._seed_path, self._seed = self._read_seed(seed)
        self._mail_fresh = not (self.data_dir / "mail" / "mail.sqlite3").exists()
        self._mail_tls = mail_tls
        self.salesforce: SalesforceSandbox | None = None
        self.sheets: SheetsSandbox | None = None
        self.mail: MailSandbox | None = None

    def _read_seed(self, given: Path | None) -> tuple[Path | None, dict[str, Any]]:
        """The seed given now, else the one saved by an earlier run of this data folder."""
        saved = self.data_dir / _SAVED_SEED
        path = given if given is not None else saved if saved.exists() else None
        if path is None:
            return None, {}
        try:
            loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the sandbox seed: {exc}") from exc
        if not isinstance(loaded, dict) or not set(loaded) <= _SECTIONS:
            raise ConfigError(f"{path}: a sandbox seed has only the sections {', '.join(sorted(_SECTIONS))}")
        if given is not None and given.resolve() != saved.resolve():
            shutil.copyfile(given, saved)
        return path, loaded

    def start(self) -> Sandboxes:
        """Start every stand-in; if one cannot start (a port taken), the others are stopped again."""
        try:
            self.salesforce = SalesforceSandbox(
                data_dir=self.data_dir / "salesforce",
                port=self.ports["salesforce"],
                seed=self._seed.get("salesforce") or None,
            ).start()
            self.sheets = SheetsSandbox(
                data_dir=self.data_dir / "sheets",
                port=self.ports["sheets"],
                seed=self._seed.get("sheets") or None,
            ).start()
            self.mail = MailSandbox(
                data_dir=self.data_dir / "mail",
                imap_port=self.ports["imap"],
                smtp_port=self.ports["smtp"],
                tls=self._mail_tls,
            ).start()
            if self._mail_fresh:
                self._seed_mail(self.mail)
        except OSError as exc:
            self.stop()
            raise ConfigError(f"cannot serve the sandboxes on ports {self._port_list()}: {exc}") from exc
        except ValueError as exc:  # a seed the stand-ins refuse (an unknown object, a bad field)
            self.stop()
            raise ConfigError(f"{self._seed_path}: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        self.info_file.touch(mode=0o600)
        self.info_file.write_text(json.dumps(self.info(), indent=2), encoding="utf-8")
        return self

    @property
    def info_file(self) -> Path:
        """`info()` as a JSON file (0600: it holds the sandbox's passwords), rewritten at each start."""
        return self.data_dir / "sandbox.json"

    def _port_list(self) -> str:
        return ", ".join(f"{name} {port or 'any'}" for name, port in self.ports.items())

    def _seed_mail(self, mail: MailSandbox) -> None:
        folders = self._seed.get("mail") or {}
        base = self._seed_path.parent if self._seed_path is not None else Path.cwd()
        for folder, files in folders.items():
            for name in files or []:
                path = base / str(name)
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    raise ConfigError(
                        f"{self._seed_path}: mail for {folder}: cannot read {path}: {exc}"
                    ) from exc
                mail.deliver(str(folder), raw)

    def info(self) -> dict[str, Any]:
        """Per service, how to reach it and log in (see SERVICES for the names)."""
        if self.salesforce is None or self.sheets is None or self.mail is None:
            raise RuntimeError("the sandboxes are not started")
        with self.sheets.store.lock:
            # A sheets connection is configured by spreadsheet id: say which title has which.
            books = {book.title: book_id for book_id, book in self.sheets.store.files.items()}
        sheets = {**self.sheets.info(), "spreadsheets": books}
        return {"salesforce": self.salesforce.info(), "sheets": sheets, **self.mail.info()}

    def stop(self) -> None:
        """Stop what runs (each saving its state when persistent); safe to call twice."""
        mail, sheets, salesforce = self.mail, self.sheets, self.salesforce
        self.mail = self.sheets = self.salesforce = None
        if mail is not None:
            mail.stop()
        if sheets is not None:
            sheets.stop()
        if salesforce is not None:
            salesforce.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sandboxes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StopSignals:
    """SIGTERM and SIGINT, from entering to leaving, ask to stop instead of killing the process.

    Enter it before announcing readiness: a script that reads the ready line and at once sends
    SIGTERM must get a clean stop (exit 0), not the default death by signal.
    Use from the main thread (Python delivers signals there).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.received.set()

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    def wait(self) -> None:
        """Block until one of the signals came (checking every second, so the handler always runs)."""
        while not self.received.wait(1.0):
            pass
