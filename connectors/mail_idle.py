"""IMAP IDLE for one selected folder: wake the caller on new mail, prove the link alive, notice death.

imapclient's `idle_check` hides a closed connection (it swallows EOF and returns nothing), so
every empty poll also peeks at the socket, and a NOOP before each IDLE doubles as the liveness
check that RFC 2177's 29-minute re-issue requires anyway. Whatever breaks surfaces as an exception
for the caller's reconnect loop; nothing here retries.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from threading import Event
from typing import Any

from imapclient import IMAPClient  # type: ignore[import-untyped]

from syncd.records import telemetry

log = logging.getLogger(__name__)


@dataclass
class WatchStats:
    """What the service exports as gauges, so a dead listener is never silent."""

    last_event_monotonic: float = field(default_factory=time.monotonic)
    """When mail last arrived (or a connection was made, which may have brought some)."""
    last_alive_monotonic: float = field(default_factory=time.monotonic)
    """When the server last answered on the watching connection (each NOOP before an IDLE)."""
    wakeups: int = 0
    idle_reissues: int = 0
    reconnects: int = 0
    idling: bool = False

    def seconds_since_event(self) -> float:
        return time.monotonic() - self.last_event_monotonic

    def seconds_since_alive(self) -> float:
        """Grows past `idle_reissue_seconds` only when the listener is dead or stuck."""
        return time.monotonic() - self.last_alive_monotonic

    def alive(self, connection: str, stream: str) -> None:
        self.last_alive_monotonic = time.monotonic()
        telemetry().watch_event(connection, stream)

    def event(self, connection: str, stream: str) -> None:
        self.wakeups += 1
        self.last_event_monotonic = self.last_alive_monotonic = time.monotonic()
        telemetry().watch_event(connection, stream)


def idle_until_stopped(
    client: IMAPClient,
    connection: str,
    stream: str,
    stop: Event,
    stats: WatchStats,
    *,
    reissue_seconds: float,
    poll_seconds: float,
) -> Iterator[None]:
    """NOOP, then IDLE until a change, the re-issue time or `stop`; repeat.

    The NOOP before each IDLE is the liveness check and also collects changes the server
    queued while we were not idling (between DONE and the next IDLE, e.g. while the caller
    was reading), which the following IDLE would not announce again.
    """
    while not stop.is_set():
        _, pending = client.noop()
        stats.alive(connection, stream)
        changed = any(is_change(r) for r in pending)
        if not changed:
            client.idle()
            stats.idling = True
            try:
                started = time.monotonic()
                while not stop.is_set() and time.monotonic() - started < reissue_seconds:
                    responses = client.idle_check(timeout=poll_seconds)
                    if any(is_bye(r) for r in responses):
                        raise EOFError("server said BYE")
                    if any(is_change(r) for r in responses):
                        changed = True
                        break
                    if not responses and peer_closed(client):
                        raise EOFError("server closed the connection")
            finally:
                stats.idling = False  # a dropped connection is not idling, whatever ends the loop
            _, leftover = client.idle_done()
            changed = changed or any(is_change(r) for r in leftover)
        if stop.is_set():
            return
        if changed:
            stats.event(connection, stream)
            yield
        else:
            stats.idle_reissues += 1


def is_change(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 1 and response[0] == b"BYE"


def peer_closed(client: IMAPClient) -> bool:
    """True when the server has closed the TCP connection (idle_check swallows EOF silently).

    Peeks on a duplicate of the raw descriptor, which works under TLS too: an EOF at the TCP level
    is visible there whatever the encryption.
    """
    sock = client.socket()
    try:
        raw = socket.socket(fileno=socket.dup(sock.fileno()))
    except OSError:
        return True
    try:
        raw.setblocking(False)
        return raw.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        raw.close()


def quietly_close(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:
        log.debug("closing an IDLE connection failed", exc_info=True)
