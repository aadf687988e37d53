"""Serving a WSGI stand-in on loopback in a background thread (werkzeug), plain or with TLS."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from syncd.sandbox.tls import LoopbackTLS

WSGIApp = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    """No line per request: a stand-in serving a demo or a test run should not flood the terminal."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LoopbackServer:
    """One threaded HTTP(S) server on 127.0.0.1; `port=0` picks a free port."""

    def __init__(self, app: WSGIApp, port: int = 0, tls: LoopbackTLS | None = None) -> None:
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            app,
            threaded=True,
            ssl_context=tls.server_context() if tls else None,
            request_handler=_QuietHandler,
        )
        self.tls = tls
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        # A short poll interval makes stop() quick (tests start and stop many stand-ins).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
