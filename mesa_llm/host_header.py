"""``Host`` header values, split and checked the same way by every served front-end (the dashboard,
the API server): a malformed value is refused rather than guessed at."""

from __future__ import annotations

import ipaddress


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


__all__ = ["is_wildcard", "split_host"]
