"""Which network addresses a download may connect to: public ones, and trusted origins.

Input: an origin (scheme, host, port) and the addresses its host name resolved to.
Output: the addresses that may be connected to, or ``RefusedAddress`` with a
one-line reason. A listing from an archive must not make archive-sim request its
own machine or network (loopback, private, link-local, multicast, reserved), unless
the request goes to an origin the settings trust: the source's own, or one listed in
``fetch.allowed_origins``. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddress(Exception):
    """A request to a non-public address that no setting allows; the message says which, in one line."""


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str) -> Origin:
    """The origin of an http(s) URL; ``ValueError`` for anything else."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    return Origin(scheme, parts.hostname.lower().rstrip("."), parts.port or DEFAULT_PORTS[scheme])


def address_kind(address: str) -> str | None:
    """What makes ``address`` non-public ("loopback", "private", ...), or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) says nothing here
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


class AddressPolicy:
    """Public addresses for everyone; any address for the trusted origins."""

    def __init__(self, trusted: Iterable[Origin] = ()) -> None:
        self.trusted = frozenset(trusted)

    def allowed(self, origin: Origin, addresses: list[str]) -> list[str]:
        """The addresses of ``origin`` that may be connected to; raises ``RefusedAddress`` if none."""
        if origin in self.trusted:
            return addresses
        public = [a for a in addresses if address_kind(a) is None]
        if public:
            return public
        shown = addresses[0] if addresses else "nothing"
        kind = address_kind(addresses[0]) if addresses else "no"
        named = "" if origin.host == shown else f" ({shown})"
        raise RefusedAddress(f"refused: {origin.host}{named} is a {kind} address, and {origin} is neither the "
                             f"source's own origin nor in fetch.allowed_origins")
