"""A deadline for one whole HTTP answer: connection, headers and body together.

requests' timeouts bound each wait for the network, not the answer: a site that trickles one
byte a second never times out, and a control waits for minutes. `Deadline` arms a timer for one
request; the connections of `DeadlineAdapter` register their socket with the deadline of the
request in progress on their thread (when they connect, and when they wait for an answer on a
kept-alive connection). When the timer fires it shuts those sockets down: the blocked read ends
at once, and the caller names the failure after the deadline (`deadline.expired`).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """`with Deadline(60) as deadline:` one request; `deadline.expired` says whether it was cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:  # after this, a late timer shuts nothing (the socket may serve the next request)
            self._done = True
            self._sockets.clear()
        _current.deadline = None

    def watch(self, sock: Any) -> None:
        """A socket this request reads from: shut down when the deadline passes."""
        with self._lock:
            if self._done:
                return
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    """End every read and write on the socket now (the file descriptor stays for its owner to close)."""
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)  # TLS in TLS wraps it
    if isinstance(raw, socket.socket):
        try:
            socket.socket.shutdown(raw, socket.SHUT_RDWR)  # the plain socket's: an SSLSocket's would drop its state
        except OSError:
            pass


def _watch(sock: Any) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _Watched:
    """Registers the connection's socket with the deadline of the request in progress."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)  # before a TLS handshake, which can be trickled too
        return sock

    def getresponse(self) -> Any:
        _watch(self.sock)  # a kept-alive connection made by an earlier request
        return super().getresponse()  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that obey the deadline of the request in progress."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:  # not a SOCKS proxy's own
            manager.pool_classes_by_scheme = _POOLS
        return manager
