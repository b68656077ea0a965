"""Which network addresses wirewatch may connect to, checked after DNS and pinned for the connection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A DNS lookup: host name and port to the addresses it names (the resolver tests swap it for a fake).
Lookup = Callable[[str, int], Awaitable[list[str]]]

# Not all of these are caught by `is_global`: CGNAT is spelled out because it is where cloud providers put
# internal services, and NAT64 because it embeds an IPv4 address that must be checked in turn.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(OSError):
    """A URL whose host is, or resolves to, an address wirewatch does not connect to."""

    reason_class = "blocked_address"


def parse_allowed(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allowlist setting as networks; ValueError naming an entry that is not one."""
    out: list[IPNetwork] = []
    for raw in networks:
        try:
            out.append(ipaddress.ip_network(raw.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{raw!r} is not an IP network ({exc})") from exc
    return tuple(out)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself: dotted, bracketed IPv6, or numeric forms such as 0x7f000001."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        # inet_aton reads what C resolvers accept: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _why_blocked(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = _why_blocked(embedded)
            return f"{inner} (inside {ip})" if inner else None
    for test, what in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip in _SHARED, "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    ):
        if test:
            return f"{ip} is {what}"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, except the networks an operator allows explicitly."""

    allowed: tuple[IPNetwork, ...] = ()

    def why_blocked(self, ip: IPAddress) -> str | None:
        """None when wirewatch may connect to ip, otherwise the reason it may not."""
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in net for net in self.allowed if net.version == 4):
            return None
        return _why_blocked(ip)

    def check(self, host: str, ip: IPAddress) -> None:
        reason = self.why_blocked(ip)
        if reason is not None:
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise BlockedAddress(f"refused to connect to {shown}: {reason}")


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """Resolves once, refuses a host with any blocked address, and hands aiohttp only checked addresses.

    aiohttp connects to exactly the addresses returned here, so there is no second lookup that a DNS
    rebinding server could answer differently.
    """

    def __init__(self, policy: AddressPolicy, lookup: Lookup = system_lookup) -> None:
        self.policy = policy
        self.lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = literal_address(host)
        try:
            addresses = [str(literal)] if literal is not None else await self.lookup(host, port)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise OSError(f"cannot resolve {host}: no addresses")
        results: list[ResolveResult] = []
        for raw in addresses:
            ip = ipaddress.ip_address(raw.split("%", 1)[0])
            self.policy.check(host, ip)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(ip),
                    port=port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None
