"""`mockserver import-vcr`: vcrpy and pytest-recording cassettes -> scenario files.

A cassette (vcrpy's YAML, or its JSON serializer's output) holds `interactions`, each a
`request` (method, uri, headers, body) and its `response` (status, headers, body.string).
Each chat completion and Responses API interaction becomes an `Exchange` written by the
recorder's own `Writer` (same scrubbing, same sequences for repeated requests, the same
Responses conversations); the others are skipped and reported. Bodies may be text,
`!!binary`, or gzip/deflate-compressed as vcrpy kept them; a stream (`text/event-stream`) is
cut into its events (a cassette keeps no timing).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mockserver import sse
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.exchange import Exchange, is_event_stream
from mockserver.recording.match_on import DEFAULT
from mockserver.recording.proxy import is_chat
from mockserver.recording.scrub import Scrubber
from mockserver.scenarios import RawEvent


class CassetteError(Exception):
    """A cassette that cannot be read at all."""


class _CassetteLoader(yaml.SafeLoader):
    """A safe loader that also reads the harmless Python tags old vcrpy cassettes carry."""


def _python_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _python_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    return list(loader.construct_sequence(node))  # type: ignore[arg-type]


_CassetteLoader.add_constructor("tag:yaml.org,2002:python/str", _python_str)
_CassetteLoader.add_constructor("tag:yaml.org,2002:python/unicode", _python_str)
_CassetteLoader.add_constructor("tag:yaml.org,2002:python/tuple", _python_tuple)


@dataclass(frozen=True, slots=True)
class Imported:
    """What one cassette gave: the file written, and what was skipped and why."""

    cassette: Path
    out: Path | None
    exchanges: int
    scenarios: int
    skipped: tuple[str, ...] = field(default=())


def read_cassette(path: Path) -> list[dict[str, Any]]:
    """A cassette's interactions (raises `CassetteError` saying what is wrong)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path}: cannot read: {exc}") from exc
    try:
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_CassetteLoader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, yaml.YAMLError) as exc:
        raise CassetteError(f"{path}: not a vcrpy cassette: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteError(
            f"{path}: not a vcrpy cassette (expected a mapping with `interactions:`; cassettes "
            "from vcrpy before 1.0 need its migration script first)"
        )
    return [i for i in data["interactions"] if isinstance(i, dict)]


def _headers(raw: Any) -> list[tuple[str, str]]:
    """vcrpy keeps headers as {name: [values]} (sometimes {name: value})."""
    if not isinstance(raw, Mapping):
        return []
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        out.extend((str(name), str(v)) for v in values if v is not None)
    return out


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _decoded(body: bytes, headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
    """The body without its content-encoding (and the headers without that header)."""
    encoding = next((v.lower() for k, v in headers if k.lower() == "content-encoding"), None)
    if encoding in (None, "identity"):
        return body, headers
    try:
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        else:
            raise RecordingError(
                f"the response body is {encoding}-compressed, which mockserver cannot decode "
                "(record the cassette with vcrpy's decode_compressed_response=True)"
            )
    except zlib.error as exc:
        if body.lstrip()[:1] in (b"{", b"[", b"d"):  # vcrpy decoded it already
            return body, [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        raise RecordingError(f"the {encoding} response body does not decompress: {exc}") from exc
    return body, [(k, v) for k, v in headers if k.lower() != "content-encoding"]


def _status(raw: Any) -> int:
    value = raw.get("code") if isinstance(raw, Mapping) else raw
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    raise RecordingError(f"the response has no status code (got {raw!r})")


def exchange_of(interaction: Mapping[str, Any]) -> Exchange:
    """One interaction as an exchange (raises `RecordingError` when it is not one to import)."""
    request = interaction.get("request")
    response = interaction.get("response")
    if not isinstance(request, Mapping) or not isinstance(response, Mapping):
        raise RecordingError("not a request/response pair")
    method = str(request.get("method", "")).upper()
    uri = str(request.get("uri", ""))
    path = uri.split("?", 1)[0]
    if not is_chat(method, path):
        raise RecordingError(f"{method} {path}: not a chat completion or a Responses API request")
    body = response.get("body")
    raw_body = _bytes(body.get("string") if isinstance(body, Mapping) else body)
    content, headers = _decoded(raw_body, _headers(response.get("headers")))
    common: dict[str, Any] = {
        "method": method,
        "url": uri,
        "request_body": _bytes(request.get("body")),
        "request_headers": tuple(_headers(request.get("headers"))),
        "status": _status(response.get("status")),
        "headers": tuple(headers),
    }
    if is_event_stream(headers):
        events = tuple(RawEvent(data=e.data, event=e.event) for e in sse.parse(content))
        return Exchange(events=events, **common)
    return Exchange(body=content, **common)


def _outputs(cassettes: Iterable[Path], out: Path) -> Iterator[tuple[Path, Path]]:
    """Each cassette's output file: `<stem>.yaml`, or `<folder>-<stem>.yaml` if that is taken."""
    taken: set[Path] = set()
    for cassette in cassettes:
        target = out / f"{cassette.stem}.yaml"
        if target in taken:
            target = out / f"{cassette.parent.name}-{cassette.stem}.yaml"
        n = 2
        while target in taken:
            target = out / f"{cassette.parent.name}-{cassette.stem}-{n}.yaml"
            n += 1
        taken.add(target)
        yield cassette, target


def _fixed(seconds: float) -> Callable[[], float]:
    """A clock stopped at the cassette's last change (a cassette does not say when it was
    recorded)."""
    return lambda: seconds


def import_cassettes(
    cassettes: Iterable[Path],
    out: Path,
    *,
    match_on: Iterable[str] = DEFAULT,
    scrub: Iterable[str] = (),
) -> list[Imported]:
    """Convert each cassette into `out/<name>.yaml` (rewritten on every import)."""
    results: list[Imported] = []
    patterns = tuple(scrub)
    for cassette, target in _outputs(cassettes, out):
        interactions = read_cassette(cassette)
        mtime = cassette.stat().st_mtime
        writer = Writer(
            target,
            one_file=True,
            scrubber=Scrubber(patterns),
            match_on=match_on,
            update="fresh",
            origin=f"Imported by `mockserver import-vcr` from the vcrpy cassette {cassette.name}",
            clock=_fixed(mtime),
        )
        skipped: list[str] = []
        for n, interaction in enumerate(interactions):
            try:
                writer.write(exchange_of(interaction))
            except RecordingError as exc:
                skipped.append(f"interactions[{n}]: {exc}")
        names = {w.scenario for w in writer.written}
        results.append(
            Imported(
                cassette,
                target if writer.written else None,
                len(writer.written),
                len(names),
                tuple(skipped),
            )
        )
    return results
