"""The egress guard's address decision, row by row of the IANA special-purpose registries.

Every row of ``tryon_core.special_addresses`` goes through ``check_url`` (the guard's decision
for an IP literal, made before any I/O): its first and last address, the first address it
decides itself (not a more specific row), and its neighbours just outside. The expectation
comes from a plain reading of the table here (the most specific row containing the address),
with IPv4 in IPv6 decoded by the interpreter's ``ipv4_mapped``/``sixtofour``, which every
Python version reads alike. Nothing here connects anywhere.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_egress import IMAGE, PARAM, PUBLIC, mock
from tryon_core.egress import EgressPolicy, GuardedFetcher, check_url
from tryon_core.errors import InvalidRequest
from tryon_core.special_addresses import IPV4_BLOCKS, IPV6_BLOCKS, SpecialBlock, Verdict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ROWS = IPV4_BLOCKS + IPV6_BLOCKS
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


# -- what the table says, read plainly ----------------------------------------------------------


def row_of(address: IPAddress) -> SpecialBlock | None:
    """The most specific row holding ``address``, by looking at every row."""
    holding = [row for row in ROWS if address.version == row.network.version]
    holding = [row for row in holding if address in row.network]
    return max(holding, key=lambda row: row.network.prefixlen, default=None)


def wrapped_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    assert address in NAT64
    return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)


def expected_refusal(address: IPAddress) -> bool:
    row = row_of(address)
    if row is None:
        return False
    if row.verdict is Verdict.EMBEDDED:
        assert isinstance(address, ipaddress.IPv6Address)
        return expected_refusal(wrapped_ipv4(address))
    return row.verdict is Verdict.REFUSE


def refused(address: IPAddress) -> bool:
    """The guard's decision for a URL naming ``address``: refused as an inside address?"""
    host = f"[{address}]" if address.version == 6 else str(address)
    try:
        check_url(f"http://{host}/a.png", param=PARAM)
    except InvalidRequest as exc:
        assert (exc.type, exc.status, exc.param) == ("forbidden_url", 400, PARAM)
        return True
    return False


# -- the table itself ---------------------------------------------------------------------------


def span(row: SpecialBlock) -> tuple[int, int, int]:
    """``(version, first, last)`` of the row's block, as numbers."""
    network = row.network
    return network.version, int(network.network_address), int(network.broadcast_address)


def inside(inner: SpecialBlock, outer: SpecialBlock) -> bool:
    (v1, first1, last1), (v2, first2, last2) = span(inner), span(outer)
    return v1 == v2 and first2 <= first1 <= last1 <= last2


def own_address(row: SpecialBlock) -> IPAddress:
    """The first address of ``row`` that no more specific row holds."""
    inner = sorted(span(other)[1:] for other in ROWS if other is not row and inside(other, row))
    cursor = int(row.network.network_address)
    for first, last in inner:
        if cursor < first:
            break
        cursor = max(cursor, last + 1)
    assert cursor <= int(row.network.broadcast_address), f"{row.network} has no address of its own"
    return type(row.network.network_address)(cursor)


def test_rows_nest_or_are_apart() -> None:
    """Most specific row is one row: any two blocks are disjoint, or one holds the other."""
    for a, b in itertools.combinations(ROWS, 2):
        (version_a, first_a, last_a), (version_b, first_b, last_b) = span(a), span(b)
        assert a.network != b.network, f"{a.network} twice"
        apart = version_a != version_b or last_a < first_b or last_b < first_a
        assert apart or inside(a, b) or inside(b, a), f"{a.network} and {b.network} overlap"


def test_every_row_is_documented_and_conservative() -> None:
    for row in ROWS:
        assert row.name and row.rfc.startswith("RFC ") and row.why, row.network
        if row.globally_reachable is False:  # what the registry says is not global never passes
            assert row.verdict is not Verdict.ALLOW, row.network
        if row.verdict is Verdict.ALLOW:  # and only what it says is global may
            assert row.globally_reachable is True, row.network


def test_every_ipv6_address_outside_global_unicast_has_a_row() -> None:
    blocks = [ipaddress.IPv6Network(str(row.network)) for row in IPV6_BLOCKS]
    outside = [block for block in blocks if not block.subnet_of(GLOBAL_UNICAST)]
    covered = list(ipaddress.collapse_addresses([*outside, GLOBAL_UNICAST]))
    assert covered == [ipaddress.IPv6Network("::/0")]


# The IANA IPv4 and IPv6 Special-Purpose Address Registries as of 2025 (192.0.0.170/32 and
# .171/32 share one registry row), IPv4 multicast (RFC 5771) and IPv6 site-local and multicast.
REGISTRIES = [
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32",
    "192.0.0.10/32", "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24",
    "192.52.193.0/24", "192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16", "192.175.48.0/24",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "255.255.255.255/32", "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48",
    "100::/64", "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128",
    "2001:1::3/128", "2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:10::/28",
    "2001:20::/28", "2001:30::/28", "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20",
    "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
]  # fmt: skip


def test_every_registry_row_is_in_the_table() -> None:
    assert set(REGISTRIES) <= {str(row.network) for row in ROWS}


# -- every row through the guard ------------------------------------------------------------------


def probes(row: SpecialBlock) -> Iterator[IPAddress]:
    """First and last address, the row's own first address, and the neighbours just outside."""
    network = row.network
    top = 2**network.max_prefixlen - 1
    yield network.network_address
    yield network.broadcast_address
    yield own_address(row)
    first, last = int(network.network_address), int(network.broadcast_address)
    for outside in (first - 1, last + 1):
        if 0 <= outside <= top:
            yield type(network.network_address)(outside)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: str(row.network))
def test_every_row_decides_its_own_addresses(row: SpecialBlock) -> None:
    own = own_address(row)
    assert row_of(own) is row
    if row.verdict is Verdict.EMBEDDED:
        assert isinstance(own, ipaddress.IPv6Address)
        assert refused(own) == refused(wrapped_ipv4(own))
    else:
        assert refused(own) == (row.verdict is Verdict.REFUSE)
    for address in probes(row):
        assert refused(address) == expected_refusal(address), address


def ipv6_forms(address: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    """``address`` as IPv4-mapped, 6to4 (two hosts of its /48) and well-known NAT64."""
    value = int(address)
    return {
        "mapped": ipaddress.IPv6Address(0xFFFF << 32 | value),
        "6to4": ipaddress.IPv6Address(0x2002 << 112 | value << 80 | 1),
        "6to4-last": ipaddress.IPv6Address(0x2002 << 112 | value << 80 | (1 << 80) - 1),
        "nat64": ipaddress.IPv6Address(int(NAT64.network_address) | value),
    }


def local_nat64(address: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(NAT64_LOCAL.network_address) | int(address))


@pytest.mark.parametrize("row", IPV4_BLOCKS, ids=lambda row: str(row.network))
def test_ipv6_forms_of_every_ipv4_row_agree(row: SpecialBlock) -> None:
    for address in probes(row):
        assert isinstance(address, ipaddress.IPv4Address)
        plain = refused(address)
        for form, wrapped in ipv6_forms(address).items():
            assert refused(wrapped) == plain, f"{form} {wrapped} of {address}"
        # the local-use NAT64 prefix is the operator's own translator: refused whatever it wraps
        assert refused(local_nat64(address))


# -- what the issue found (Python 3.11 let these through) ----------------------------------------

FOUND = [
    "192.0.0.8",
    "192.88.99.0",
    "192.88.99.1",
    "192.88.99.255",
    "3fff::1",
    "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2002:c000:8::1",  # 6to4 around 192.0.0.8
    "2002:c058:6301::",  # 6to4 around 192.88.99.1
    "64:ff9b::c000:8",  # NAT64 around 192.0.0.8
    "::ffff:192.88.99.1",
    "192.0.0.11",  # the rest of 192.0.0.0/24 was open too
    "2001:1::4",
]


@pytest.mark.parametrize("address", FOUND)
async def test_what_the_probe_found_is_refused_unsent(address: str) -> None:
    host = f"[{address}]" if ":" in address else address

    async def resolves_there(name: str, port: int) -> list[str]:
        return [address]

    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), resolver=resolves_there, transport=transport) as f:
        for url in (f"http://{host}/a.png", "https://images.example/a.png"):
            with pytest.raises(InvalidRequest) as caught:
                await f.fetch(url, param=PARAM)
            assert caught.value.type == "forbidden_url"
    assert seen == []


@pytest.mark.parametrize(
    "address",
    [PUBLIC, f"::ffff:{PUBLIC}", "2002:5db8:d822::1", "64:ff9b::5db8:d822", "192.31.196.1"],
)
async def test_public_addresses_in_any_spelling_are_fetched(address: str) -> None:
    """A public IPv4 address wrapped in IPv6 is as reachable as itself (here: a mock transport)."""
    host = f"[{address}]" if ":" in address else address
    transport, seen = mock()
    async with GuardedFetcher(EgressPolicy(), transport=transport) as fetcher:
        assert await fetcher.fetch(f"http://{host}/a.png", param=PARAM) == IMAGE
    assert len(seen) == 1


def test_the_decision_never_asks_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """``is_global`` and friends differ between Python 3.11 and 3.12+: the guard uses none."""

    def asked(self: object) -> bool:
        raise AssertionError("the guard asked the interpreter")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in dir(cls):
            if name.startswith("is_"):
                monkeypatch.setattr(cls, name, property(asked))
    for row in ROWS:
        for address in probes(row):
            refused(address)


# -- properties ---------------------------------------------------------------------------------


def near_rows(version: int) -> st.SearchStrategy[int]:
    """Addresses (as numbers) in or just around a row: where the interesting edges are."""
    top = 2 ** (32 if version == 4 else 128) - 1
    spans = [(first, last) for v, first, last in map(span, ROWS) if v == version]
    return st.sampled_from(spans).flatmap(
        lambda edges: st.integers(max(0, edges[0] - 2), min(top, edges[1] + 2))
    )


ipv4s = st.one_of(st.integers(0, 2**32 - 1), near_rows(4)).map(ipaddress.IPv4Address)
ipv6s = st.one_of(
    st.one_of(st.integers(0, 2**128 - 1), near_rows(6)).map(ipaddress.IPv6Address),
    ipv4s.map(lambda address: ipv6_forms(address)["6to4"]),
)


@settings(max_examples=500, deadline=None)
@given(address=st.one_of(ipv4s, ipv6s))
def test_refused_exactly_when_the_most_specific_row_refuses(address: IPAddress) -> None:
    assert refused(address) == expected_refusal(address)
    if address.version == 6 and address not in GLOBAL_UNICAST:
        row = row_of(address)
        assert row is not None
        assert refused(address) or row.verdict is Verdict.EMBEDDED


@settings(max_examples=500, deadline=None)
@given(address=ipv4s, suffix=st.integers(0, 2**80 - 1))
def test_ipv6_forms_agree_with_the_ipv4_decision(
    address: ipaddress.IPv4Address, suffix: int
) -> None:
    plain = refused(address)
    for form, wrapped in ipv6_forms(address).items():
        assert refused(wrapped) == plain, f"{form} {wrapped}"
    assert refused(ipaddress.IPv6Address(0x2002 << 112 | int(address) << 80 | suffix)) == plain
    assert refused(local_nat64(address))
