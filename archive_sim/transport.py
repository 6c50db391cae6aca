"""The connections under ``download.HttpClient``: address checks and deadlines.

Input: an ``AddressPolicy`` and requests made by worker threads. Output: a
``requests`` session whose connections (1) resolve the host name once, check every
address against the policy and connect only to an allowed one (so a name cannot
resolve to a public address for the check and a private one for the connection),
and (2) can be cut from another thread: ``Watchdog`` shuts down a thread's
connections when its deadline passes or when the whole run is aborted, which wakes
a read blocked on a server that sends one byte every few seconds.
"""

from __future__ import annotations

import heapq
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from .addresses import AddressPolicy, Origin


@dataclass(eq=False)
class Connections:
    """The sockets of one thread's session (a session is only ever used by its own thread)."""

    sockets: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    expired: bool = False

    def cut(self) -> None:
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a blocked recv returns at once, with end of file
            except OSError:
                pass  # already closed


class Watchdog:
    """Cuts a thread's connections at its deadline, or everyone's on ``abort``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: list[tuple[float, int, Connections]] = []
        self._all: weakref.WeakSet[Connections] = weakref.WeakSet()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.aborted = threading.Event()

    def register(self, connections: Connections) -> None:
        with self._cond:
            self._all.add(connections)
            if self.aborted.is_set():
                connections.cut()

    @contextmanager
    def deadline(self, connections: Connections, seconds: float) -> Iterator[Connections]:
        """Within the block, ``connections`` are cut once ``seconds`` have passed (``expired`` is then set)."""
        connections.expired = False
        entry = (time.monotonic() + seconds, self._next_number(), connections)
        with self._cond:
            heapq.heappush(self._armed, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield connections
        finally:
            with self._cond:
                if entry in self._armed:
                    self._armed.remove(entry)
                    heapq.heapify(self._armed)

    def abort(self) -> None:
        """Cut every connection now and from now on (an interrupt: running downloads end at once)."""
        with self._cond:
            self.aborted.set()
            for connections in list(self._all):
                connections.cut()

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _next_number(self) -> int:
        with self._cond:
            self._count += 1
            return self._count

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                while self._armed and self._armed[0][0] <= now:
                    _, _, connections = heapq.heappop(self._armed)
                    connections.expired = True
                    connections.cut()
                self._cond.wait(self._armed[0][0] - now if self._armed else None)


class _GuardedConnection:
    """Mixed into urllib3's connections: check the addresses, then connect; let the watchdog cut it."""

    policy: AddressPolicy
    connections: Connections
    scheme_name: str
    _watched: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        origin = Origin(self.scheme_name, self.host.lower().rstrip("."), self.port)
        try:
            found = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in found))
        sock = None
        for address in self.policy.allowed(origin, addresses):
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
                break
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
            except OSError as exc:
                error = exc
        if sock is None:
            raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error
        # A second descriptor of the same connection: TLS takes over the first one, and
        # shutting down either ends the connection for both.
        self._watched = sock.dup()
        self.connections.sockets.add(self._watched)
        return sock

    def close(self) -> None:
        super().close()
        if self._watched is not None:
            self._watched.close()
            self._watched = None


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: AddressPolicy, connections: Connections) -> None:
        self._policy, self._connections = policy, connections
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        shared = {"policy": self._policy, "connections": self._connections}
        http = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), {**shared, "scheme_name": "http"})
        https = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection),
                     {**shared, "scheme_name": "https"})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def guarded_session(policy: AddressPolicy, connections: Connections) -> requests.Session:
    """A session whose every connection goes through ``policy`` and can be cut through ``connections``.

    Behind an HTTP proxy (``HTTPS_PROXY``), connections go to the proxy and the
    address check is the proxy's to make.
    """
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _GuardedAdapter(policy, connections))
    return session
