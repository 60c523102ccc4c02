"""The egress guard: fetch an image URL a client gave without letting it reach inside.

Each hop of a fetch goes through the same steps:

1. Parse strictly (httpx's parser, then our own checks): ``http`` or ``https`` only, a host,
   no user info, no backslash, a port in 1..65535. A host whose last label is a number is an
   IPv4 address in any spelling a resolver would accept (``2130706433``, ``0x7f.1``,
   ``017700000001``, ``127.1``): it is read with the WHATWG URL rules and checked for what it
   means; one that does not read as an address is refused.
2. Refuse ``localhost`` and ``*.localhost`` outright (RFC 6761: loopback by definition).
   Resolve any other name once (``Resolver``; IP literals skip it) and refuse the hop if ANY
   address is in a block of the IANA special-purpose registries that a public server cannot
   be on (loopback, private, link-local where cloud metadata lives, shared, documentation,
   benchmarking, multicast, reserved, unspecified, unique-local...), IPv4 addresses wrapped in
   IPv6 (mapped, 6to4, NAT64) judged as the IPv4 address they wrap: the explicit table of
   ``tryon_core.special_addresses``, the same on every Python version.
3. Connect to the address that was checked, not to a name resolved again: the request URL
   carries the IP, ``Host`` the original host, and TLS verifies the original name through the
   ``sni_hostname`` request extension.
4. Never follow redirects blindly: each ``Location`` is a new hop through steps 1-3, at most
   ``max_redirects`` of them, never the same URL twice.
5. Stream the body and stop as soon as it passes ``max_bytes``; a ``Content-Length`` that is
   already too big is refused unread. Compressed bodies are refused (we ask for ``identity``).
6. One deadline, ``timeout``, covers the whole fetch: every resolution, connection, redirect
   and byte of body.

``EgressPolicy.allow_hosts`` lifts step 2's address block (only that) for exact
``"host:port"`` entries, as written in the URL with the default port filled in (``"[::1]:8080"``
for IPv6). A bare host is refused at construction: an exemption is always for one port.

``GuardedFetcher.post`` sends a body (webhooks) through steps 1-3 and 6, and follows no
redirect at all: it answers the status, and reads at most a few bytes of the response.
``check_url`` is step 1 plus step 2 for IP literals, without any I/O: a quick check of a URL
when it is handed in, long before anything is sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from tryon_core.asyncio_network import http_transport
from tryon_core.errors import InvalidImage, InvalidRequest, PayloadTooLarge
from tryon_core.special_addresses import forbidden

__all__ = ["EgressPolicy", "GuardedFetcher", "Resolver", "check_url", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND = frozenset({404, 410})
_MAX_URL_LENGTH = 8192
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_HEADERS = {
    "Accept": "image/jpeg, image/png, image/webp",
    "Accept-Encoding": "identity",
    "User-Agent": "tryon-core",
}
_POST_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "tryon-core"}
_POST_READ_BYTES = 4096  # of a POST's response: enough to drain a short answer, never more


@dataclass(frozen=True, kw_only=True)
class EgressPolicy:
    """What a fetch may do. ``allow_hosts`` holds exact lowercase ``"host:port"`` entries."""

    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 20.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        entries = frozenset(entry.strip().lower() for entry in self.allow_hosts)
        for entry in entries:
            host, colon, port = entry.rpartition(":")
            if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
                raise ValueError(f"allow_hosts entry {entry!r} must be 'host:port'")
            if host.startswith("[") != host.endswith("]") or (":" in host and host[0] != "["):
                raise ValueError(f"allow_hosts entry {entry!r}: write IPv6 hosts as '[::1]:port'")
        object.__setattr__(self, "allow_hosts", entries)
        if self.max_bytes < 1 or self.timeout <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and timeout must be positive, max_redirects not negative")


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host`` (the default ``Resolver``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # as it goes in DNS, SNI and the allow list: lowercase, no brackets, no final dot
    port: int
    literal: IPAddress | None  # the host is an IP address (in whatever spelling)

    @property
    def key(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class GuardedFetcher:
    """Fetches client-given image URLs under an :class:`EgressPolicy`. Owns its HTTP client."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver or system_resolver
        if transport is None:
            # No keep-alive: a pooled connection is keyed by IP, and must never carry a request
            # for another name than the one its TLS session verified.
            transport = http_transport(
                retries=0, limits=httpx.Limits(max_keepalive_connections=0), trust_env=False
            )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=policy.timeout,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # keeps none
        )

    async def __aenter__(self) -> GuardedFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, *, param: str) -> bytes:
        """The body of ``url``, or a ``ClientError`` naming ``param``.

        ``InvalidRequest`` ``invalid_url`` (not an http(s) URL, malformed) or ``forbidden_url``
        (an address inside); ``PayloadTooLarge`` ``image_too_large``; ``InvalidImage``
        ``image_not_found`` (404, 410) or ``image_download_failed`` (DNS, connection, status,
        timeout, redirects). Response bodies are never echoed.
        """
        try:
            async with asyncio.timeout(self._policy.timeout):
                return await self._follow(url, param)
        except TimeoutError:
            raise _failed(param, f"it took longer than {self._policy.timeout:g} s") from None

    async def _follow(self, url: str, param: str) -> bytes:
        target = _parse(url, param)
        seen = {str(target.url)}
        for hop in range(self._policy.max_redirects + 1):
            address = await self._check(target, param)
            location = await self._get(target, address, param)
            if isinstance(location, bytes):
                return location
            if hop == self._policy.max_redirects:
                break
            try:
                next_url = str(target.url.join(location))
            except (httpx.InvalidURL, ValueError):
                raise _invalid_url(param, "it redirects to a malformed URL") from None
            target = _parse(next_url, param, redirected=True)
            if str(target.url) in seen:
                raise _failed(param, "its redirects go round in a loop")
            seen.add(str(target.url))
        raise _failed(param, f"it redirects more than {self._policy.max_redirects} times")

    async def vet(self, url: str, *, param: str) -> None:
        """Check ``url`` as a send would, resolving its name now, without sending anything.

        Raises ``InvalidRequest`` (``invalid_url``/``forbidden_url``) for a URL that would be
        refused. A name that does not resolve (in time) passes: every send checks it again.
        """
        target = _parse(url, param)
        with contextlib.suppress(TimeoutError):  # a resolver this slow: the send checks again
            async with asyncio.timeout(self._policy.timeout):
                await self._vetted(target, param)

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str], param: str) -> int:
        """POST ``body`` to ``url`` and answer the response's status; redirects are not followed.

        The URL passes the same checks as a fetch (``InvalidRequest`` ``invalid_url`` or
        ``forbidden_url``). The request goes to the address that was checked. A name that does
        not resolve or a connection that fails raises ``ConnectionError``; no answer within
        ``timeout`` raises ``TimeoutError``. At most a few bytes of the response are read.
        """
        try:
            async with asyncio.timeout(self._policy.timeout):
                target = _parse(url, param)
                addresses = await self._vetted(target, param)
                if not addresses:
                    raise ConnectionError(f"the host {target.host!r} could not be resolved")
                return await self._post(target, addresses[0], body, headers)
        except TimeoutError:
            raise TimeoutError(f"no answer within {self._policy.timeout:g} s") from None

    async def _post(
        self, target: _Target, address: IPAddress, body: bytes, headers: Mapping[str, str]
    ) -> int:
        sent = {**_POST_HEADERS, **headers, "Host": target.url.netloc.decode("ascii")}
        request = self._client.build_request(
            "POST",
            _at_address(target, address),
            headers=sent,
            content=body,
            extensions=_sni(target),
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= _POST_READ_BYTES:
                        break
                return response.status_code
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise TimeoutError(f"no answer within {self._policy.timeout:g} s") from None
        except httpx.RemoteProtocolError:
            raise ConnectionError("the server sent a malformed response") from None
        except httpx.HTTPError:
            raise ConnectionError("the connection to the server failed") from None

    async def _check(self, target: _Target, param: str) -> IPAddress:
        """The one address to connect to, after every address of the host passed the block."""
        addresses = await self._vetted(target, param)
        if not addresses:
            raise _failed(param, f"the host {target.host!r} could not be resolved")
        return addresses[0]

    async def _vetted(self, target: _Target, param: str) -> list[IPAddress]:
        """Every address of the host, each past the block (none if it does not resolve)."""
        self._refuse_loopback_name(target, param)
        addresses = await self._addresses(target)
        self._refuse_inside(target, addresses, param)
        return addresses

    async def _addresses(self, target: _Target) -> list[IPAddress]:
        """Every address of the host (the literal itself), or none when it does not resolve."""
        if target.literal is not None:
            return [target.literal]
        try:
            answers = await self._resolve(target.host, target.port)
            return [ipaddress.ip_address(answer) for answer in answers]
        except (OSError, UnicodeError, ValueError):
            return []

    def _refuse_loopback_name(self, target: _Target, param: str) -> None:
        """``localhost`` and ``*.localhost`` are refused unasked: no resolver is consulted."""
        if _loopback_name(target) and target.key not in self._policy.allow_hosts:
            raise _forbidden_url(param)

    def _refuse_inside(self, target: _Target, addresses: list[IPAddress], param: str) -> None:
        if target.key not in self._policy.allow_hosts and any(map(forbidden, addresses)):
            raise _forbidden_url(param)

    async def _get(self, target: _Target, address: IPAddress, param: str) -> bytes | str:
        """One request to ``address``: the body, or the ``Location`` of a redirect."""
        headers = {**_HEADERS, "Host": target.url.netloc.decode("ascii")}
        request = self._client.build_request(
            "GET", _at_address(target, address), headers=headers, extensions=_sni(target)
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                return await self._read(response, param)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise _failed(param, "the server did not answer in time") from None
        except httpx.RemoteProtocolError:  # also a Location httpx itself cannot parse
            raise _failed(param, "its server sent a malformed response") from None
        except httpx.HTTPError:
            raise _failed(param, "the connection to its server failed") from None

    async def _read(self, response: httpx.Response, param: str) -> bytes | str:
        status = response.status_code
        if status in _REDIRECTS:
            location: str = response.headers.get("location", "")
            if not location:
                raise _failed(param, f"its server answered HTTP {status} without a Location")
            return location
        if status in _NOT_FOUND:
            raise InvalidImage(
                f"{param} was not found (HTTP {status}).", type="image_not_found", param=param
            )
        if not 200 <= status < 300:
            raise _failed(param, f"its server answered HTTP {status}")
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise _failed(param, "its server sent a compressed body")
        limit = self._policy.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(param, limit)
        body = bytearray()
        async for chunk in response.aiter_bytes():  # identity only: no decompression here
            body += chunk
            if len(body) > limit:
                raise _too_large(param, limit)
        if not body:
            raise _failed(param, "its server sent an empty body")
        return bytes(body)


def _at_address(target: _Target, address: IPAddress) -> httpx.URL:
    """The target's URL with the checked address in place of its host name."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return target.url.copy_with(host=str(address))


def _sni(target: _Target) -> dict[str, str]:
    """TLS verifies the original name, not the address the request goes to."""
    if target.url.scheme == "https" and target.literal is None:
        return {"sni_hostname": target.host}
    return {}


# -- parsing and address checks ---------------------------------------------------------------


def check_url(url: str, *, param: str, allow_hosts: Iterable[str] = ()) -> str:
    """``url`` normalized, after the checks a fetch makes before any I/O.

    Raises ``InvalidRequest`` ``invalid_url`` (not an http(s) URL, user info, malformed) or
    ``forbidden_url`` (an IP literal inside, or ``localhost`` / ``*.localhost``, unless its
    ``"host:port"`` is in ``allow_hosts``). Other host names are not resolved here: the guard
    checks what they resolve to when it connects.
    """
    target = _parse(url, param)
    allowed = {entry.strip().lower() for entry in allow_hosts}
    inside = forbidden(target.literal) if target.literal is not None else _loopback_name(target)
    if inside and target.key not in allowed:
        raise _forbidden_url(param)
    return str(target.url)


def _loopback_name(target: _Target) -> bool:
    """``localhost`` and names under ``.localhost`` are loopback by definition (RFC 6761)."""
    return target.host == "localhost" or target.host.endswith(".localhost")


def _parse(url: str, param: str, *, redirected: bool = False) -> _Target:
    where = "it redirects to" if redirected else "it is"
    if len(url) > _MAX_URL_LENGTH or "\\" in url:
        raise _invalid_url(param, f"{where} not a well-formed URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _invalid_url(param, f"{where} not a well-formed URL") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise _invalid_url(param, f"{where} not an http or https URL")
    if parsed.userinfo:
        raise _invalid_url(param, f"{where} a URL with user info ('user@'), which is not allowed")
    port = _DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
    if not 0 < port < 65536:
        raise _invalid_url(param, f"{where} a URL with an invalid port")
    host = parsed.raw_host.decode("ascii").lower()
    literal: IPAddress | None = None
    if ":" in host:
        try:
            if "%" in host:  # a zone id ("%25eth0") only ever names a local link
                raise ValueError(host)
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid_url(param, f"{where} a URL with a malformed IPv6 address") from None
    else:
        host = host.removesuffix(".")
        labels = host.split(".")
        if _ends_in_number(labels):
            literal = _ipv4(labels)
            if literal is None:
                raise _invalid_url(param, f"{where} a URL with a malformed IPv4 address")
        elif len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            raise _invalid_url(param, f"{where} a URL with an invalid host name")
    return _Target(url=parsed.copy_with(fragment=None), host=host, port=port, literal=literal)


def _ends_in_number(labels: list[str]) -> bool:
    last = labels[-1]
    return last.isdigit() or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 address as inet_aton and WHATWG read it: 0x hex, 0 octal, decimal."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits or not digits.isascii() or not digits.isalnum():
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
    """``127.1``, ``0x7f.1``, ``2130706433``... as the address they mean, or None."""
    if not 1 <= len(labels) <= 4:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    *head, last = (n for n in numbers if n is not None)
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _forbidden_url(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param} points to a private, local or reserved address; "
        "only public http(s) URLs can be fetched.",
        type="forbidden_url",
        param=param,
    )


def _invalid_url(param: str, reason: str) -> InvalidRequest:
    return InvalidRequest(f"{param} cannot be fetched: {reason}.", type="invalid_url", param=param)


def _failed(param: str, reason: str) -> InvalidImage:
    return InvalidImage(
        f"{param} could not be downloaded: {reason}.", type="image_download_failed", param=param
    )


def _too_large(param: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{param} is larger than {limit} bytes.", type="image_too_large", param=param
    )
