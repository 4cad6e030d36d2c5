"""Blocking calls to the upstream with `http.client`, for recording inside a test process.

The in-process mock patches httpx (respx) and httpx2, so the pytest plugin cannot reach the
real upstream through them: this module speaks HTTP/1.1 with the standard library instead,
and returns the whole exchange, a stream's events timed as they arrived. It reads no proxy
settings from the environment (`HTTPS_PROXY`...): the upstream must be reachable directly.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable
from urllib.parse import urlsplit

from mockserver.recording.exchange import Exchange, Tape

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "x-mockserver-session",
        "x-mockserver-admin",
    }
)
"""Request headers not forwarded: the connection's own (httpx sets length and host), and
mockserver's own (a session name, the admin marker), which are nothing to the upstream."""


def check_upstream(url: str) -> str:
    """The upstream base URL without a trailing slash; `ValueError` says what is expected."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "expected the upstream's base URL, as a client would use it "
            f"(http:// or https://, e.g. https://api.openai.com/v1), got {url!r}"
        )
    return url.rstrip("/")


def forward_headers(
    headers: Iterable[tuple[bytes, bytes]], api_key: str | None
) -> list[tuple[bytes, bytes]]:
    """The request headers to send upstream: the client's, minus the connection's own, with
    `api_key` (if given) in place of the client's credentials (in `api-key` if the client sent
    only that header, as Azure clients do, else as a bearer token), and no compression asked."""
    out = [(k.lower(), v) for k, v in headers if k.lower().decode("latin-1") not in HOP_BY_HOP]
    if api_key is not None:
        names = {k for k, _ in out}
        azure = b"api-key" in names and b"authorization" not in names
        out = [(k, v) for k, v in out if k not in (b"authorization", b"api-key")]
        if azure:
            out.append((b"api-key", api_key.encode("latin-1")))
        else:
            out.append((b"authorization", f"Bearer {api_key}".encode("latin-1")))
    out.append((b"accept-encoding", b"identity"))
    return out


class UpstreamError(Exception):
    """The upstream could not be reached, or broke off before its response's head."""


def fetch(
    url: str,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    *,
    api_key: str | None = None,
    method: str = "POST",
    timeout: float = 600.0,
) -> Exchange:
    """Send one request upstream and read its whole response (raises `UpstreamError`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"not an http(s) URL: {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    sent = forward_headers(headers, api_key)
    tape = Tape(method, url, body, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in sent])
    try:
        connection.putrequest(
            method,
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            skip_accept_encoding=True,
        )
        for name, value in sent:
            connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
        connection.putheader("content-length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise UpstreamError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    tape.head(response.status, response.getheaders())
    aborted = False
    try:
        while chunk := response.read1(65536):
            tape.chunk(chunk)
    except (OSError, http.client.HTTPException):
        aborted = True
    finally:
        connection.close()
    return tape.finish(aborted=aborted)
