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
from mockserver.recording.proxy import forward_headers


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
