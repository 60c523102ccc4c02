"""Which IP addresses the egress guard may connect to, from an explicit table of special blocks.

The table holds every row of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC
6890's registries with every later addition, as they stand in 2025: up to RFC 9780's dummy IPv6
prefix), and the blocks those registries leave to others: IPv4 multicast (RFC 5771) and the
IPv6 address space outside global unicast ``2000::/3`` (IANA's IPv6 Address Space registry:
blocks reserved by the IETF, site-local, multicast). Each row says what the guard does:

- ``REFUSE``: not ours to reach. Every block the registry says is not globally reachable, every
  row it says "N/A" for or terminated, and the anycast rows whose nearest server is, by design,
  a device of the gateway's own network.
- ``ALLOW``: a globally reachable row where public servers live (AS112, AMT, ORCHIDv2, DETs).
- ``EMBEDDED``: the IPv6 spelling of an IPv4 address (mapped, the well-known NAT64 prefix,
  6to4): the IPv4 address inside is judged by the IPv4 rows, nothing more or less.

An address is judged by the most specific row that holds it: the registry's own reading of its
nested rows ("not useable unless by virtue of a more specific reservation"). An address in no
row is an ordinary unicast address and may be reached. Nothing here asks the interpreter
(``is_global``, ``is_private`` ... changed between Python 3.11 and 3.12), so the decision is the
same on every version.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

__all__ = ["IPV4_BLOCKS", "IPV6_BLOCKS", "SpecialBlock", "Verdict", "block_of", "forbidden"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Verdict(enum.Enum):
    REFUSE = "refuse"
    ALLOW = "allow"
    EMBEDDED = "embedded"  # an IPv4 address in IPv6 dress: the IPv4 rows decide


@dataclass(frozen=True)
class SpecialBlock:
    """One row: ``globally_reachable`` as the registry says it (None: "N/A", blank, not listed).

    ``ipv4_shift`` (``EMBEDDED`` rows only) is where the IPv4 address sits: the number of bits
    to its right.
    """

    network: IPNetwork
    name: str
    rfc: str
    globally_reachable: bool | None
    verdict: Verdict
    why: str
    ipv4_shift: int | None = None

    def __post_init__(self) -> None:
        if (self.verdict is Verdict.EMBEDDED) != (self.ipv4_shift is not None):
            raise ValueError(f"{self.network}: an EMBEDDED row says where the IPv4 address is")

    def embedded_ipv4(self, address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
        assert self.ipv4_shift is not None
        return ipaddress.IPv4Address((int(address) >> self.ipv4_shift) & 0xFFFF_FFFF)


_REFUSE, _ALLOW, _EMBEDDED = Verdict.REFUSE, Verdict.ALLOW, Verdict.EMBEDDED

_NOT_GLOBAL = "not globally reachable"
_DOCS = "documentation only: nothing real lives there"
_INSIDE = "an address inside some network, never a public server"
_LOCAL_ANYCAST = (
    "globally reachable, but an anycast address answered by the nearest server, which by design "
    "is a device of our own network (its NAT, relay or registrar): refused"
)
_PUBLIC_ANYCAST = "globally reachable anycast of a service run in public: like any public address"
_IETF = "reserved by the IETF, never assigned as unicast"


def _row(
    prefix: str,
    name: str,
    rfc: str,
    reachable: bool | None,
    verdict: Verdict,
    why: str,
    ipv4_shift: int | None = None,
) -> SpecialBlock:
    network = ipaddress.ip_network(prefix)
    return SpecialBlock(network, name, rfc, reachable, verdict, why, ipv4_shift)


# fmt: off
IPV4_BLOCKS: tuple[SpecialBlock, ...] = (
    _row("0.0.0.0/8", '"This network"', "RFC 791", False, _REFUSE, "this host or network"),
    _row("0.0.0.0/32", '"This host on this network"', "RFC 1122", False, _REFUSE,
         "this host"),
    _row("10.0.0.0/8", "Private-Use", "RFC 1918", False, _REFUSE, _INSIDE),
    _row("100.64.0.0/10", "Shared Address Space", "RFC 6598", False, _REFUSE,
         "carrier-grade NAT: inside the provider's network"),
    _row("127.0.0.0/8", "Loopback", "RFC 1122", False, _REFUSE, "this host"),
    _row("169.254.0.0/16", "Link Local", "RFC 3927", False, _REFUSE,
         "this link: cloud metadata services live here"),
    _row("172.16.0.0/12", "Private-Use", "RFC 1918", False, _REFUSE, _INSIDE),
    _row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", False, _REFUSE,
         "usable only through a more specific row"),
    _row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False, _REFUSE,
         "DS-Lite and 464XLAT: inside the host or its provider"),
    _row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False, _REFUSE,
         "a source address only, never a destination"),
    _row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True, _REFUSE,
         _LOCAL_ANYCAST),
    _row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True,
         _REFUSE, _LOCAL_ANYCAST),
    _row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050", False, _REFUSE,
         "a DNS64 discovery name, never a server"),
    _row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050", False, _REFUSE,
         "a DNS64 discovery name, never a server"),
    _row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False, _REFUSE, _DOCS),
    _row("192.31.196.0/24", "AS112-v4", "RFC 7535", True, _ALLOW, _PUBLIC_ANYCAST),
    _row("192.52.193.0/24", "AMT", "RFC 7450", True, _ALLOW, _PUBLIC_ANYCAST),
    _row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", None, _REFUSE,
         "terminated in 2015: whoever answers there now is nobody we know"),
    _row("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False, _REFUSE,
         _NOT_GLOBAL),
    _row("192.168.0.0/16", "Private-Use", "RFC 1918", False, _REFUSE, _INSIDE),
    _row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True, _ALLOW,
         _PUBLIC_ANYCAST),
    _row("198.18.0.0/15", "Benchmarking", "RFC 2544", False, _REFUSE,
         "benchmarking labs: inside some network"),
    _row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False, _REFUSE, _DOCS),
    _row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False, _REFUSE, _DOCS),
    _row("224.0.0.0/4", "Multicast (IPv4 Multicast Address Space registry)", "RFC 5771", None,
         _REFUSE, "multicast: a group, never one server"),
    _row("240.0.0.0/4", "Reserved", "RFC 1112", False, _REFUSE, "reserved: never assigned"),
    _row("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919", False, _REFUSE,
         "broadcast on this link"),
)

IPV6_BLOCKS: tuple[SpecialBlock, ...] = (
    # The IPv6 Special-Purpose Address Registry, row by row.
    _row("::1/128", "Loopback Address", "RFC 4291", False, _REFUSE, "this host"),
    _row("::/128", "Unspecified Address", "RFC 4291", False, _REFUSE, "this host"),
    _row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False, _EMBEDDED,
         "the IPv4 address in its last 32 bits, spelled in IPv6", ipv4_shift=0),
    _row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True, _EMBEDDED,
         "NAT64 well-known prefix: the IPv4 address in its last 32 bits is where it goes",
         ipv4_shift=0),
    _row("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", False, _REFUSE,
         "NAT64 local-use prefix: the operator's own translator, wherever the IPv4 part goes"),
    _row("100::/64", "Discard-Only Address Block", "RFC 6666", False, _REFUSE, _NOT_GLOBAL),
    _row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False, _REFUSE,
         "a source address only, never a destination"),
    _row("2001::/23", "IETF Protocol Assignments", "RFC 2928", False, _REFUSE,
         "usable only through a more specific row"),
    _row("2001::/32", "TEREDO", "RFC 4380, RFC 8190", None, _REFUSE,
         "a tunnel through some NAT to a client, never a public server"),
    _row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True, _REFUSE,
         _LOCAL_ANYCAST),
    _row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True,
         _REFUSE, _LOCAL_ANYCAST),
    _row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True,
         _REFUSE, _LOCAL_ANYCAST),
    _row("2001:2::/48", "Benchmarking", "RFC 5180", False, _REFUSE,
         "benchmarking labs: inside some network"),
    _row("2001:3::/32", "AMT", "RFC 7450", True, _ALLOW, _PUBLIC_ANYCAST),
    _row("2001:4:112::/48", "AS112-v6", "RFC 7535", True, _ALLOW, _PUBLIC_ANYCAST),
    _row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", None, _REFUSE,
         "terminated in 2014: whoever answers there now is nobody we know"),
    _row("2001:20::/28", "ORCHIDv2", "RFC 7343", True, _ALLOW,
         "globally reachable host identifiers: a public host may use one"),
    _row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374",
         True, _ALLOW, "globally reachable host identifiers: a public host may use one"),
    _row("2001:db8::/32", "Documentation", "RFC 3849", False, _REFUSE, _DOCS),
    _row("2002::/16", "6to4", "RFC 3056", None, _EMBEDDED,
         "the relay for the IPv4 address in bits 16-47 is where it goes", ipv4_shift=80),
    _row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True, _ALLOW,
         _PUBLIC_ANYCAST),
    _row("3fff::/20", "Documentation", "RFC 9637", False, _REFUSE, _DOCS),
    _row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False, _REFUSE,
         "segment routing inside an operator's network"),
    _row("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", False, _REFUSE, _INSIDE),
    _row("fe80::/10", "Link-Local Unicast", "RFC 4291", False, _REFUSE,
         "this link: cloud metadata services live here"),
    # The IPv6 Address Space registry: everything outside global unicast 2000::/3 that the rows
    # above leave uncovered (ULA and link-local are above).
    _row("::/8", "Reserved by IETF (IPv4-compatible ::/96 included)", "RFC 4291", None,
         _REFUSE, _IETF),
    _row("100::/8", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("200::/7", "Reserved by IETF (formerly NSAP)", "RFC 4048", None, _REFUSE, _IETF),
    _row("400::/6", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("800::/5", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("1000::/4", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("4000::/3", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("6000::/3", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("8000::/3", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("a000::/3", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("c000::/3", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("e000::/4", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("f000::/5", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("f800::/6", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("fe00::/9", "Reserved by IETF", "RFC 4291", None, _REFUSE, _IETF),
    _row("fec0::/10", "Site-local (deprecated)", "RFC 3879", None, _REFUSE,
         "a site's own network"),
    _row("ff00::/8", "Multicast", "RFC 4291", None, _REFUSE,
         "multicast: a group, never one server"),
)
# fmt: on


def _index(rows: tuple[SpecialBlock, ...], bits: int) -> list[tuple[int, dict[int, SpecialBlock]]]:
    """The rows by prefix length, longest first: ``(shift, {network >> shift: row})``."""
    by_length: dict[int, dict[int, SpecialBlock]] = {}
    for row in rows:
        shift = bits - row.network.prefixlen
        bucket = by_length.setdefault(shift, {})
        key = int(row.network.network_address) >> shift
        if key in bucket:
            raise ValueError(f"{row.network} is in the table twice")
        bucket[key] = row
    return sorted(by_length.items())


_IPV4_INDEX = _index(IPV4_BLOCKS, 32)
_IPV6_INDEX = _index(IPV6_BLOCKS, 128)


def block_of(address: IPAddress) -> SpecialBlock | None:
    """The most specific row that holds ``address``, or None for an ordinary address."""
    index = _IPV4_INDEX if address.version == 4 else _IPV6_INDEX
    value = int(address)
    for shift, rows in index:
        row = rows.get(value >> shift)
        if row is not None:
            return row
    return None


def forbidden(address: IPAddress) -> bool:
    """True when the guard must not connect to ``address`` (IPv4 inside IPv6 judged as IPv4)."""
    row = block_of(address)
    if row is None:
        return False
    if row.verdict is Verdict.EMBEDDED and isinstance(address, ipaddress.IPv6Address):
        return forbidden(row.embedded_ipv4(address))
    return row.verdict is Verdict.REFUSE
