"""What keeps the local runtime's HTTP servers safe on a developer's machine, next to a browser.

* :func:`install_http_guard` puts two things on an aiohttp app: a middleware that refuses every
  request whose ``Host`` header is not one of this server's names (403) — a web page that rebinds its
  own DNS name to 127.0.0.1 (DNS rebinding) still sends its own name as ``Host`` and is refused —
  and :data:`SECURITY_HEADERS` on every response (CSP with ``frame-ancestors``, ``nosniff``,
  ``no-referrer``), error pages and the WebSocket upgrade included.
* :class:`HostPolicy` says which ``Host`` values are this server's: ``localhost``, ``127.0.0.1`` and
  ``[::1]`` with the port, the configured ``--host``, names given with ``--allow-host``, and, when
  listening on every interface (``0.0.0.0``/``::``), any IP address literal (DNS rebinding needs a
  name; a page served from an IP address is only same-origin with that address).
* :func:`is_loopback_peer` and :func:`is_foreign_origin` are for endpoints that must only serve
  this machine's own tools (``/_local/token``, the Lambda ``Invoke`` API).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "LOOPBACK_NAMES",
    "SECURITY_HEADERS",
    "HostPolicy",
    "install_http_guard",
    "is_foreign_origin",
    "is_loopback_host",
    "is_loopback_peer",
    "is_wildcard_host",
]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_wildcard_host(host: str) -> bool:
    """``0.0.0.0``, ``::`` or empty: listening on every interface."""
    return host.strip("[]") in ("", "0.0.0.0", "::")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` header values a server on ``host:port`` answers to."""

    host: str
    port: int
    extra: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def loopback(cls, port: int) -> HostPolicy:
        return cls("127.0.0.1", port)

    def names(self) -> frozenset[str]:
        names = {*LOOPBACK_NAMES, _bracketed(self.host.lower()), *(_bracketed(n.lower()) for n in self.extra)}
        return frozenset(names)

    def allows(self, header: str | None) -> bool:
        if not header:
            return False
        value = header.strip().lower()
        if value.startswith("["):
            name, _, rest = value.partition("]")
            name += "]"
            port = rest.removeprefix(":")
        else:
            name, _, port = value.partition(":")
        if port and port != str(self.port):
            return False
        if not port and self.port != 80:
            return False
        if name in self.names():
            return True
        if is_wildcard_host(self.host):
            try:
                ipaddress.ip_address(name.strip("[]"))
            except ValueError:
                return False
            return True
        return False


def is_loopback_peer(request: web.Request) -> bool:
    """Whether the TCP peer is this machine (a loopback address)."""
    remote = request.remote or ""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_foreign_origin(request: web.Request) -> bool:
    """An ``Origin`` header other than this very server (``http://{Host}``): a cross-site request.

    Browsers send ``Origin`` on every cross-origin request and on same-origin POSTs; tools (curl,
    the AWS SDKs) send none.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    host = request.headers.get("Host", "")
    return origin.lower() != f"http://{host}".lower()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_http_guard(app: web.Application, policy: HostPolicy) -> None:
    """Refuse foreign ``Host`` headers (403) and add :data:`SECURITY_HEADERS` to every response."""

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.allows(request.headers.get("Host")):
            return web.json_response(
                {
                    "message": f"Forbidden: this server does not answer to Host {request.headers.get('Host')!r}"
                },
                status=403,
            )
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    app.middlewares.append(check_host)
    app.on_response_prepare.append(add_headers)
