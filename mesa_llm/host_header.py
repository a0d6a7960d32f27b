"""``Host`` header values, split and checked the same way by every served front-end (the dashboard,
the API server): a malformed value is refused rather than guessed at."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 with or without brackets) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """True for an address that binds every interface (``0.0.0.0``, ``::``)."""
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_unspecified
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name:port`` / ``[v6]:port`` / ``name`` split, lower-cased; None when malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/\\@ \t,"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    else:
        name, sep, port_text = value.rpartition(":")
        if not sep:
            name, port_text = value, ""
        elif ":" in name:  # a bare IPv6 address is not a valid Host
            return None
    if not port_text:
        return name, None
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return name, int(port_text)


class HostNames:
    """Which ``Host`` values name a server bound to ``host:port``.

    Loopback: the loopback names and addresses. One other address: that address. Every interface
    (0.0.0.0 / ::): any IP literal (a rebinding attack needs a domain name), the loopback names
    and this machine's own names. ``extra``: further names (any port): a proxy's, a test client's.
    """

    def __init__(self, host: str, port: int, extra: tuple[str, ...] = ()) -> None:
        bound = host.strip().strip("[]").lower()
        self.port = port
        self.any_ip_literal = is_wildcard(bound)
        names = {bound}
        if is_loopback(bound) or self.any_ip_literal:
            names |= {"localhost", "127.0.0.1", "::1"}
        if self.any_ip_literal:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.names = frozenset(n for n in names if n)
        self.extra = frozenset(e.strip().lower() for e in extra if e.strip())

    def allows(self, value: str | None) -> bool:
        """Whether a request's ``Host`` header names this server."""
        if value is None:
            return False
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        if name in self.extra:
            return True
        if (80 if port is None else port) != self.port:
            return False
        if name in self.names:
            return True
        if self.any_ip_literal:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


__all__ = ["HostNames", "is_loopback", "is_wildcard", "split_host"]
