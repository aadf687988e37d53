"""A TCP proxy on 127.0.0.1 that can split server writes mid-line, or cut connections silently.

Real networks split responses across segments; imapclient's `idle_check` reads in non-blocking mode
and then aborts with "unterminated line" (imapclient issue #519). This proxy makes that happen on
demand against the real Dovecot, so the connector's recovery is tested, not assumed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class SplitProxy:
    def __init__(self, target_port: int, pause: float = 0.3) -> None:
        self.target_port = target_port
        self.pause = pause
        self.split = threading.Event()
        """Set it to split the next server write mid-line."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            self._spawn(self._pipe, client, server, False)
            self._spawn(self._pipe, server, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_server and self.split.is_set() and len(data) > 3:
                    self.split.clear()  # one split write is the trap; later ones need not be slow
                    sink.sendall(data[:3])  # "* 1" now, " EXISTS\r\n" later: always mid-line
                    time.sleep(self.pause)
                    sink.sendall(data[3:])
                else:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop_connections(self) -> None:
        """Cut every open connection without a word (no BYE), as a dead NAT or a pulled cable would."""
        sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self.drop_connections()
        for thread in self._threads:
            thread.join(timeout=5)
