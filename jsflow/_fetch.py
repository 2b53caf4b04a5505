"""The Python half of the opt-in ``fetch()`` global: policy checks and one
HTTP exchange per call, on httpx.

``WorkflowEngine.enable_fetch`` builds a :class:`Fetcher` and registers it as
the built-in step ``fetch``, so an ``await fetch(...)`` in the workflow body is
one journaled step (replayed from the journal, never re-sent). Inside a JS
``step()`` body the same Fetcher serves the ephemeral channel (see
``_jssteps.py``): the request is real, only the step's result is journaled.

Safety rules (a workflow script is untrusted code that must not reach
internal services through the host):

- only ``http`` and ``https`` URLs;
- with ``allow_hosts``, the URL's host must match an entry: a host name
  (``api.example.com``), a suffix wildcard (``*.example.com``), an IP address
  or a CIDR network (``10.1.0.0/16``);
- every address the host name resolves to is checked (``ipaddress``); an
  address that is not globally routable (private, loopback, link-local,
  reserved, multicast, unspecified, carrier-grade NAT...) is refused unless the
  address lies in an allowed IP/CIDR entry or the host was named explicitly
  (not by wildcard) in ``allow_hosts``. IP literals are checked without any
  DNS lookup, so ``http://169.254.169.254/`` is refused before any packet;
- redirects are followed by hand (at most 20) and every hop is checked the
  same way; credentials are dropped when a redirect changes origin;
- with the default client the check is repeated at connect time and the
  connection goes to the address that was checked, so DNS rebinding between
  check and connect does not help (a caller-supplied client is trusted with
  its own transport; it still gets the pre-send checks);
- the body is streamed and reading stops past ``max_response_bytes`` (counted
  after content decoding; ``Accept-Encoding: identity`` is sent by default);
- every request has a deadline (``timeout`` seconds for the whole exchange,
  redirects and body included).

Transport failures (DNS, connect, timeouts) raise :class:`FetchTransportError`
and are retried by ``retry``; refusals raise :class:`FetchRefusedError` and
are never retried. Both reach the script as a JS ``TypeError`` (as WHATWG
fetch rejects network errors), with a message starting ``fetch failed:`` or
``fetch refused:``. HTTP error statuses are responses, not errors.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from ._retry import RetryPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]] | Sequence[str]]

MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ORIGIN_BOUND_HEADERS = ("authorization", "cookie", "proxy-authorization")


class FetchError(Exception):
    """Base of fetch failures; the script sees a ``TypeError`` with this message."""


class FetchRefusedError(FetchError):
    """The request breaks the fetch policy (host, address, size); never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"fetch refused: {reason}")


class FetchTransportError(FetchError):
    """The request could not be completed (DNS, connect, timeout); retried by policy."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"fetch failed: {reason}")


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts and addresses a script may reach."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    restricted: bool = False  # True when allow_hosts was given

    @classmethod
    def from_allow_hosts(cls, allow_hosts: Iterable[str] | None) -> HostPolicy:
        if allow_hosts is None:
            return cls()
        if isinstance(allow_hosts, str):
            raise TypeError("allow_hosts must be a list of host names, not a single string")
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in allow_hosts:
            entry = str(raw).strip().lower().strip("[]")
            if not entry:
                raise ValueError("allow_hosts contains an empty entry")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(suffixes), tuple(networks), restricted=True)

    def _in_networks(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.networks)

    def check_host(self, host: str) -> IPAddress | None:
        """Refuse a host outside the allowlist; returns the address of an IP literal."""
        host = host.lower().rstrip(".")
        literal = _ip_literal(host)
        if self.restricted:
            if literal is not None:
                ok = self._in_networks(literal) or str(literal) in self.names
            else:
                ok = host in self.names or any(host.endswith(s) for s in self.suffixes)
            if not ok:
                raise FetchRefusedError(f"host {host!r} is not in allow_hosts")
        return literal

    def check_address(self, host: str, addr: IPAddress) -> None:
        """Refuse an address that is not globally routable unless explicitly allowed."""
        if isinstance(addr, ipaddress.IPv6Address):
            addr = _embedded_ipv4(addr) or addr
        if addr.is_global and not addr.is_multicast:
            return
        if self._in_networks(addr) or host.lower().rstrip(".") in self.names:
            return
        raise FetchRefusedError(
            f"{host!r} resolves to {addr}, a private, loopback, link-local or reserved address "
            "(allow it explicitly with allow_hosts)"
        )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo):
    a gateway would deliver to it, so that is the address to check."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def _system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass
class AddressGuard:
    """Resolves a host and checks every address; shared by the pre-send check
    and the connect-time backend."""

    policy: HostPolicy
    resolver: Resolver | None = None

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = self.policy.check_host(host)
        if literal is not None:
            self.policy.check_address(host, literal)
            return [literal]
        try:
            raw = self.resolver(host, port) if self.resolver else _system_resolve(host, port)
            found = await raw if isinstance(raw, Awaitable) else raw
        except OSError as exc:
            raise FetchTransportError(f"cannot resolve {host!r}: {exc}") from exc
        addrs: list[IPAddress] = []
        for text in found:
            try:
                addrs.append(ipaddress.ip_address(str(text).split("%", 1)[0]))
            except ValueError as exc:
                raise FetchRefusedError(f"{host!r} resolved to an invalid address {text!r}") from exc
        if not addrs:
            raise FetchTransportError(f"cannot resolve {host!r}: no addresses")
        for addr in addrs:  # every one: a mixed answer could otherwise be raced
            self.policy.check_address(host, addr)
        return addrs


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the guard accepted (defeats DNS rebinding)."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addrs = await self._guard.addresses(host, port)
        except FetchError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return await self._inner.connect_tcp(
            str(addrs[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's errors as httpx's, the mapping httpx's own transport applies
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx(exc: Exception) -> Exception:
    for core, mapped in _ERRORS:
        if isinstance(exc, core):
            return mapped(str(exc))
    return exc


class _GuardedStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aiter__(self) -> Any:
        try:
            async for part in self.inner:
                yield part
        except Exception as exc:
            raise _as_httpx(exc) from exc

    async def aclose(self) -> None:
        await self.inner.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport on an httpcore pool whose network backend checks every
    address it connects to (``_GuardedBackend``). Built from the public pieces
    (httpcore's pool takes a network backend; httpx has no hook for one)."""

    def __init__(self, guard: AddressGuard) -> None:
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend(guard)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            resp = await self.pool.handle_async_request(core)
        except Exception as exc:
            raise _as_httpx(exc) from exc
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_GuardedStream(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def guarded_transport(guard: AddressGuard) -> httpx.AsyncBaseTransport:
    return GuardedTransport(guard)


@dataclass
class Fetcher:
    """Performs one script ``fetch``: ``await fetcher(request) -> response dict``.

    ``request`` is what the JS side built: ``{url, method, headers, body}``;
    the result is ``{status, statusText, url, redirected, headers, body}`` with
    lower-cased header names and the body as text.
    """

    client: httpx.Client | httpx.AsyncClient | None = None
    timeout: float = 30.0
    retry: RetryPolicy | None = None
    allow_hosts: Sequence[str] | None = None
    max_response_bytes: int = 10 * 2**20  # WorkflowEngine.enable_fetch passes its default
    resolver: Resolver | None = None
    guard: AddressGuard = field(init=False)

    def __post_init__(self) -> None:
        if self.client is not None and not isinstance(self.client, httpx.Client | httpx.AsyncClient):
            raise TypeError("client must be an httpx.Client or httpx.AsyncClient")
        if not self.timeout or self.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if self.max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self.guard = AddressGuard(HostPolicy.from_allow_hosts(self.allow_hosts), self.resolver)

    async def __call__(self, request: Any) -> dict[str, Any]:
        req = _validate(request)
        if self.retry is None:
            return await self._fetch(req)
        refused: FetchRefusedError | None = None
        async for attempt in self.retry.async_retrying():
            with attempt:
                try:
                    return await self._fetch(req)
                except FetchRefusedError as exc:  # policy, not luck: never retried
                    refused = exc
            if refused is not None:
                raise refused
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _fetch(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(req)
        except TimeoutError as exc:
            raise FetchTransportError(f"timed out after {self.timeout:g}s") from exc

    async def _exchange(self, req: dict[str, Any]) -> dict[str, Any]:
        method, url, headers, body = req["method"], req["url"], dict(req["headers"]), req["body"]
        own = self.client is None
        client: httpx.Client | httpx.AsyncClient = self.client or httpx.AsyncClient(
            transport=guarded_transport(self.guard), trust_env=False
        )
        try:
            for hop in range(MAX_REDIRECTS + 1):
                parsed = httpx.URL(url)
                await self.guard.addresses(
                    parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
                )
                status, reason, resp_headers, data = await self._send(client, method, url, headers, body)
                location = resp_headers.get("location")
                if status not in _REDIRECTS or location is None:
                    return {
                        "status": status,
                        "statusText": reason,
                        "url": url,
                        "redirected": hop > 0,
                        "headers": resp_headers,
                        "body": data,
                    }
                next_url = urljoin(url, location)
                _check_scheme(next_url)
                if _origin(next_url) != _origin(url):
                    for name in _ORIGIN_BOUND_HEADERS:
                        headers.pop(name, None)
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = ("HEAD" if method == "HEAD" else "GET"), None
                    headers.pop("content-type", None)
                    headers.pop("content-length", None)
                url = next_url
            raise FetchTransportError(f"more than {MAX_REDIRECTS} redirects")
        finally:
            if own:
                await client.aclose()  # type: ignore[union-attr]

    async def _send(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str,
        headers: dict[str, str],
        body: str | None,
    ) -> tuple[int, str, dict[str, str], str]:
        content = body.encode("utf-8") if body is not None else None
        try:
            if isinstance(client, httpx.AsyncClient):
                request = client.build_request(
                    method, url, headers=headers, content=content, timeout=self.timeout
                )
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    raw = await self._read_async(response)
                finally:
                    await response.aclose()
            else:
                deadline = time.monotonic() + self.timeout
                response, raw = await asyncio.to_thread(
                    self._send_sync, client, method, url, headers, content, deadline
                )
        except httpx.TimeoutException as exc:
            raise FetchTransportError(f"timed out: {exc or type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            refused = _policy_cause(exc)  # raised by the guarded backend, under httpcore
            if refused is not None:
                raise refused from exc
            raise FetchTransportError(f"{type(exc).__name__}: {exc}") from exc
        text = _decode(response, raw)
        # the cap holds for what is journaled: invalid UTF-8 decodes to U+FFFD
        # (3 bytes each) and a one-byte charset to up to 3 bytes a character
        if len(text) > self.max_response_bytes // 3 and len(text.encode("utf-8")) > self.max_response_bytes:
            raise self._too_big()
        return (response.status_code, response.reason_phrase, _headers(response.headers), text)

    async def _read_async(self, response: httpx.Response) -> bytes:
        self._check_length(response)
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._too_big()
            chunks.append(chunk)
        return b"".join(chunks)

    def _send_sync(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        deadline: float,
    ) -> tuple[httpx.Response, bytes]:
        request = client.build_request(method, url, headers=headers, content=content, timeout=self.timeout)
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            self._check_length(response)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise self._too_big()
                if time.monotonic() > deadline:
                    raise FetchTransportError(f"timed out after {self.timeout:g}s")
                chunks.append(chunk)
            return response, b"".join(chunks)
        finally:
            response.close()

    def _check_length(self, response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_big()

    def _too_big(self) -> FetchRefusedError:
        return FetchRefusedError(
            f"the response body (as UTF-8 text) is larger than max_response_bytes ({self.max_response_bytes})"
        )


def _policy_cause(exc: BaseException) -> FetchError | None:
    """The refusal the guarded backend raised under httpcore, if that is what
    failed. httpcore re-raises inside ``except`` blocks without ``from``, so
    the refusal may be the implicit context rather than the cause: both are
    followed (a rebinding answer must stay a refusal, which is never retried)."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None or isinstance(seen, FetchError):
            break
        seen = seen.__cause__ or seen.__context__
    if isinstance(seen, FetchError):
        return _copy_error(seen)
    return None


def _copy_error(err: FetchError) -> FetchError:
    reason = str(err).split(": ", 1)[-1]
    return FetchRefusedError(reason) if isinstance(err, FetchRefusedError) else FetchTransportError(reason)


# The Fetch standard's forbidden request headers and methods: the transport
# owns them (Host would let a script reach another virtual host than the URL
# names; Content-Length and Transfer-Encoding could smuggle a second request).
# runtime/steps.js refuses them first, as a TypeError where fetch is called.
FORBIDDEN_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie", "cookie2",
        "date", "dnt", "expect", "host", "keep-alive", "origin", "referer", "set-cookie", "te",
        "trailer", "transfer-encoding", "upgrade", "via",
    }
)  # fmt: skip
FORBIDDEN_HEADER_PREFIXES = ("proxy-", "sec-")
METHOD_OVERRIDE_HEADERS = frozenset({"x-http-method", "x-http-method-override", "x-method-override"})
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})


def _check_header(name: str, value: str) -> None:
    if name in FORBIDDEN_HEADERS or name.startswith(FORBIDDEN_HEADER_PREFIXES):
        raise FetchRefusedError(f"{name!r} is a forbidden request header")
    methods = {m.strip().upper() for m in value.split(",")}
    if name in METHOD_OVERRIDE_HEADERS and methods & FORBIDDEN_METHODS:
        raise FetchRefusedError(f"{name!r} names a forbidden method")


def _validate(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise FetchRefusedError("malformed request")
    url = request["url"]
    _check_scheme(url)
    headers = request.get("headers") or {}
    if not isinstance(headers, dict):
        raise FetchRefusedError("malformed headers")
    for name, value in headers.items():
        _check_header(str(name).lower(), str(value))
    method = str(request.get("method") or "GET").upper()
    if method in FORBIDDEN_METHODS:
        raise FetchRefusedError(f"{method} is a forbidden method")
    body = request.get("body")
    return {
        "url": url,
        "method": method,
        # identity unless the script asks: the size cap then counts real bytes
        "headers": {"accept-encoding": "identity"} | {str(k).lower(): str(v) for k, v in headers.items()},
        "body": None if body is None else str(body),
    }


def _check_scheme(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchRefusedError(f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchRefusedError(f"only http and https URLs with a host are allowed, not {url!r}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _headers(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _decode(response: httpx.Response, raw: bytes) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")
