"""Which addresses an outbound fetch may reach: public ones, and hosts an operator allowed by name.

A link that a provider, a gateway or a person hands us must not reach the bot's own host, its network or
the cloud's metadata service (server-side request forgery): loopback, private, link-local, CGNAT, multicast,
reserved and unspecified ranges are refused, in IPv4 and IPv6, and IPv6 forms that carry an IPv4 address
(IPv4-mapped, 6to4, NAT64) are judged by that address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, where some clouds put metadata services


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (not ours, not our network's, not special-purpose)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return False  # a tunnel to an address we cannot judge
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    elif address in _CGNAT:
        return False
    special = (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )  # fmt: skip
    return address.is_global and not special


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host names literally (`127.0.0.1`, `[::1]`), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class HostRule:
    """One allowed `host[:port]`: without a port, any port of that host."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        """Whether (host, port) is this rule's."""
        return _canonical(host) == self.host and (self.port is None or self.port == port)


class AllowedHosts:
    """Hosts an operator trusts although they are not public (a self-hosted image server): `host[:port]`, comma
    separated. A host matches by its name as written in the URL (or its address, for an IP literal)."""

    def __init__(self, rules: tuple[HostRule, ...] = ()) -> None:
        self.rules = rules

    @classmethod
    def parse(cls, text: str) -> AllowedHosts:
        """`images.internal, 10.0.0.5:8080, [fd00::5]:443`; ValueError naming a malformed entry."""
        rules = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            host, port = _split_port(entry)
            if not host or any(c in host for c in "/?#@ "):
                raise ValueError(f"{entry!r} is not host or host:port")
            rules.append(HostRule(_canonical(host), port))
        return cls(tuple(rules))

    def allows(self, host: str, port: int) -> bool:
        """Whether the operator allowed this host (and port)."""
        return any(rule.matches(host, port) for rule in self.rules)


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"{entry!r} is not host or host:port")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if port is None:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} has no valid port")
    return host, int(port)


def _canonical(host: str) -> str:
    literal = ip_literal(host)
    return str(literal) if literal is not None else host.lower().rstrip(".")
