"""Is this address one the server may send a request to? (SSRF defence, shared by core.)

The server makes requests to URLs users chose (outbound webhooks): it must not be aimed at the
instance's own network (loopback, private ranges, link-local cloud metadata at
169.254.169.254, reserved or multicast ranges). A URL is checked when it is saved and again,
by resolving its host, right before each request: a host name may resolve elsewhere later
(DNS rebinding), so the request is then sent to the address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeAddress(ValueError):
    """The URL may not be requested; ``message`` says why in the user's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def public_address(address: str) -> bool:
    """True for an address on the public internet (not loopback, private, link-local, shared
    CGNAT, reserved, unspecified or multicast); IPv4-mapped IPv6 counts as its IPv4."""
    ip = _ip(address)
    # is_global leaves out private, loopback, link-local, shared (CGNAT) and reserved ranges.
    return ip.is_global and not ip.is_multicast


def internal_address_allowed(address: str) -> bool:
    """What an administrator's "allow private receivers" admits: public, private and loopback
    addresses, but never link-local ones (169.254.169.254 answers with cloud credentials),
    multicast or unspecified."""
    ip = _ip(address)
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return ip.is_global or ip.is_private or ip.is_loopback


def check_url_shape(url: str) -> tuple[str, str, int]:
    """The URL's scheme, host and port, if it is an absolute http(s) URL without credentials."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeAddress("is not a valid web address") from None
    if parts.scheme not in {"http", "https"}:
        raise UnsafeAddress("must start with https:// (or http://)")
    host = parts.hostname or ""
    if not host:
        raise UnsafeAddress("needs a host name, e.g. https://example.com/hooks")
    if parts.username or parts.password:
        raise UnsafeAddress("must not contain a user name or password")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


async def resolve_checked(url: str, *, allow_private: bool = False) -> str:
    """Resolve ``url``'s host and return the address to connect to, or raise
    :class:`UnsafeAddress` when any address it resolves to is not public (unless
    ``allow_private``, an administrator's choice for an internal receiver, which still
    excludes link-local addresses)."""
    _scheme, host, port = check_url_shape(url)
    try:
        if _is_ip_literal(host):
            addresses = [host.split("%", 1)[0]]
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
            addresses = [info[4][0] for info in infos]
    except (socket.gaierror, UnicodeError, ValueError):
        raise UnsafeAddress(f"the host name {host!r} cannot be resolved") from None
    if not addresses:
        raise UnsafeAddress(f"the host name {host!r} cannot be resolved")
    allowed = internal_address_allowed if allow_private else public_address
    if not all(allowed(a) for a in addresses):
        if allow_private:
            raise UnsafeAddress("must not be a link-local, multicast or unspecified address")
        raise UnsafeAddress("must be an address on the public internet, not a loopback, "
                            "private, link-local or reserved one")
    return addresses[0]
