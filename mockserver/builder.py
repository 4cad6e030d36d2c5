"""Scenarios written in Python: the YAML keys as keyword arguments, read by the YAML loader.

    from mockserver.builder import scenario, reply, tool_call, error

    scenario("weather", match={"last_user_message": {"contains": "weather"}},
             reply=reply(tool_calls=[tool_call("get_weather", {"city": "Paris"})]))
    scenario(sequence=[error(429), "ok"])      # a string is a reply's `content`

Each helper returns the mapping the YAML would hold (`reply(...)` -> `{"content": ...}`), and
`scenario()` hands that mapping to `mockserver.scenarios.read_scenario`, the reader YAML files
go through (no YAML text in between): one reader decides what a scenario means, and a mistake is
reported with its key path at the calling line, e.g.
`tests/test_chat.py:12: reply.tool_calls[0]: missing required key 'name'`.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockserver.scenarios import Scenario, ScenarioSet, read_scenario

Json = Any
ReplyLike = str | Mapping[str, Json]
"""A reply mapping (from `reply()`, `error()` or a dict with the YAML keys), or its content."""

_HERE = tuple(
    str(folder) + os.sep
    for folder in (Path(__file__).parent, Path(__file__).parent.parent / "pytest_plugin")
)


def _plain(value: Json, path: str) -> Json:
    """The value as a YAML file could hold it (tuples become lists); anything else is an error."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{path}: {type(value).__name__} is not a scenario value "
        "(use str, int, float, bool, None, dict or list)"
    )


def _keys(**keys: Json) -> dict[str, Json]:
    """The given keys, in order, without the ones left at None."""
    return {k: v for k, v in keys.items() if v is not None}


def _reply_mapping(value: ReplyLike, path: str) -> Json:
    if isinstance(value, str):
        return {"content": value}
    return _plain(value, path)


def tool_call(
    name: str, arguments: Json = None, *, id: str | None = None, type: str | None = None
) -> dict[str, Json]:
    """A tool call; `arguments` may be a dict (sent as JSON text) or the JSON text itself."""
    return _keys(name=name, arguments=arguments, id=id, type=type)


def audio(
    transcript: str,
    *,
    file: str | None = None,
    format: str | None = None,
    id: str | None = None,
    expires_in: int | None = None,
) -> dict[str, Json]:
    """Spoken output; `file` is read relative to the calling test's folder."""
    return _keys(transcript=transcript, file=file, format=format, id=id, expires_in=expires_in)


def error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str | None] | None = None,
    delay_ms: float | None = None,
) -> dict[str, Json]:
    """An error reply (OpenAI's envelope; defaults for the status fill what is left out)."""
    spec = _keys(status=status, message=message, type=type, code=code, param=param)
    if headers is not None:
        spec["headers"] = dict(headers)
    return _keys(error=spec, delay_ms=delay_ms)


def interrupt(after_chunks: int, *, error: Mapping[str, Json] | None = None) -> dict[str, Json]:
    """Break a stream after `after_chunks` chunks: with an error event (`error(...)` or its
    `error` mapping), or by dropping the connection."""
    if error is not None and "error" in error:
        error = error["error"]
    return _keys(after_chunks=after_chunks, error=error)


def stream(
    *,
    chunk_size: int | None = None,
    first_chunk_delay_ms: float | Mapping[str, float] | None = None,
    chunk_delay_ms: float | Mapping[str, float] | None = None,
    interrupt: Mapping[str, Json] | None = None,
    ttft_ms: float | Mapping[str, float] | None = None,
    tokens_per_second: float | None = None,
) -> dict[str, Json]:
    """How a streamed reply is cut and paced (a delay may be a `{median, p99}` or `{min, max}`
    distribution)."""
    return _keys(
        chunk_size=chunk_size,
        first_chunk_delay_ms=first_chunk_delay_ms,
        chunk_delay_ms=chunk_delay_ms,
        interrupt=interrupt,
        ttft_ms=ttft_ms,
        tokens_per_second=tokens_per_second,
    )


def choice(
    content: Json = None,
    *,
    refusal: str | None = None,
    tool_calls: Sequence[Mapping[str, Json]] | None = None,
    audio: str | Mapping[str, Json] | None = None,
    finish_reason: str | None = None,
    reasoning: str | None = None,
    harmony: Sequence[Mapping[str, Json]] | None = None,
) -> dict[str, Json]:
    """One choice of a reply with several (`reply(choices=[...])`)."""
    return _keys(
        content=content,
        refusal=refusal,
        tool_calls=tool_calls,
        audio=audio,
        finish_reason=finish_reason,
        reasoning=reasoning,
        harmony=harmony,
    )


# reply() repeats choice()'s keys on purpose (a mirror): a one-choice reply takes them as its
# own, as a YAML reply does (scenarios.REPLY_KEYS starts with CHOICE_KEYS).
def reply(
    content: Json = None,
    *,
    refusal: str | None = None,
    tool_calls: Sequence[Mapping[str, Json]] | None = None,
    audio: str | Mapping[str, Json] | None = None,
    finish_reason: str | None = None,
    reasoning: str | None = None,
    harmony: Sequence[Mapping[str, Json]] | None = None,
    choices: Sequence[Mapping[str, Json]] | None = None,
    usage: Mapping[str, Json] | None = None,
    headers: Mapping[str, str | None] | None = None,
    stream: Mapping[str, Json] | None = None,
    delay_ms: float | None = None,
    model: str | None = None,
    system_fingerprint: str | None = None,
    service_tier: str | None = None,
    error: int | Mapping[str, Json] | None = None,
) -> dict[str, Json]:
    """One reply: text, a refusal, tool calls, audio, several choices, or an error."""
    if isinstance(error, Mapping) and "error" in error:
        error = error["error"]
    return _keys(
        content=content,
        refusal=refusal,
        tool_calls=tool_calls,
        audio=audio,
        finish_reason=finish_reason,
        reasoning=reasoning,
        harmony=harmony,
        choices=choices,
        usage=usage,
        headers=headers,
        stream=stream,
        delay_ms=delay_ms,
        model=model,
        system_fingerprint=system_fingerprint,
        service_tier=service_tier,
        error=error,
    )


def caller() -> tuple[str, int, Path]:
    """Where user code called into the builder or the plugin: file (relative), line, folder."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_HERE):
        frame = frame.f_back
    path = Path(frame.f_code.co_filename)
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        shown = str(path)
    return shown, frame.f_lineno, path.parent


def scenario(
    name: str | None = None,
    *,
    match: Mapping[str, Json] | None = None,
    reply: ReplyLike | None = None,
    sequence: Sequence[ReplyLike] | None = None,
    after: str | None = None,
    priority: int | None = None,
    optional: bool | None = None,
    strict: bool | None = None,
    where: tuple[str, int, Path] | None = None,
    faults: Sequence[Mapping[str, Json]] | None = None,
) -> Scenario:
    """A scenario, exactly as the same keys in a YAML file would give it.

    Without a name it is named after where it was written (`tests/test_chat.py:12`).
    `strict=True` answers unknown request parameters with a 400, like a file's `strict: true`.
    """
    file, line, base = where or caller()
    mapping = _keys(
        name=name if name is not None else f"{file}:{line}",
        priority=priority,
        optional=optional,
        match=_plain(match, "match") if match is not None else None,
        reply=_reply_mapping(reply, "reply") if reply is not None else None,
        sequence=(
            [_reply_mapping(r, f"sequence[{i}]") for i, r in enumerate(sequence)]
            if sequence is not None
            else None
        ),
        after=after,
        faults=[_plain(f, f"faults[{i}]") for i, f in enumerate(faults)] if faults else None,
    )
    if strict is not None and not isinstance(strict, bool):
        raise TypeError(f"strict: expected True or False, got {strict!r}")
    made = read_scenario(mapping, file=file, line=line, base=base, strict=strict is True)
    _SOURCES[id(made)] = Source(made, mapping, base, strict is True)
    while len(_SOURCES) > SOURCES_KEPT:
        _SOURCES.popitem(last=False)
    return made


@dataclass(frozen=True, slots=True)
class Source:
    """What a builder scenario was read from: the pytest plugin sends it to a shared server
    (`--mockserver-url`), which cannot be sent Python objects."""

    scenario: Scenario
    mapping: dict[str, Json]
    base: Path
    """The folder its audio `file:` names are read relative to."""
    strict: bool


SOURCES_KEPT = 4096
"""The newest builder scenarios whose `Source` is kept (by identity) for `source_of`."""
_SOURCES: OrderedDict[int, Source] = OrderedDict()


def source_of(scenario: Scenario) -> Source | None:
    """The keys `scenario()` read `scenario` from, if it made it (and it is among the newest
    `SOURCES_KEPT`)."""
    found = _SOURCES.get(id(scenario))
    return found if found is not None and found.scenario is scenario else None


def scenario_set(*scenarios: Scenario) -> ScenarioSet:
    """Scenarios from the builder as one set (names must be unique, as in files)."""
    return ScenarioSet(scenarios)
