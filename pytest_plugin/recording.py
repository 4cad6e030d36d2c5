"""Record modes for the pytest plugin: one cassette (a scenario file) per test, replayed, or
filled from a real upstream when asked (vcrpy's semantics).

- `none` (default): replay the cassette if there is one; never touch the network.
- `once`: replay an existing cassette as `none` does; without one, record every request.
- `new_episodes`: replay what the cassette has (each recorded reply once), record the rest.
- `all`: record every request; the cassette keeps the interactions not re-recorded.
- `rewrite`: record every request into a cassette started afresh.

Requests the test's own scenarios answer are never forwarded. The upstream is called with
`http.client` (the in-process mock patches httpx and httpx2), so recording waits for each
whole response before the test's client gets it; the cassette is written before that.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest

if TYPE_CHECKING:
    from mockserver.engine import OnMiss
    from mockserver.recording.cassette import Update
    from mockserver.scenarios import ScenarioSet

    from .mock import Mockserver

RecordMode = Literal["none", "once", "new_episodes", "all", "rewrite"]
MODES: tuple[RecordMode, ...] = ("none", "once", "new_episodes", "all", "rewrite")
MARKER = "mockserver_cassette"
MARKER_HELP = (
    f"{MARKER}(path=None, *, record_mode=None): this test's cassette file (relative to the test "
    "file's folder; default <mockserver_cassette_dir>/<module>/<test>.yaml) and its record mode"
)
DEFAULT_UPSTREAM = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "sk-mockserver"  # what the fixtures set OPENAI_API_KEY to when it is unset
UPDATES: dict[RecordMode, Update] = {
    "none": "append",
    "once": "append",
    "new_episodes": "append",
    "all": "replace",
    "rewrite": "fresh",
}
INI: tuple[tuple[str, str, str, Any], ...] = (
    (
        "mockserver_record_mode",
        f"record mode when --mockserver-record-mode is not given: {', '.join(MODES)} "
        "(default none)",
        "string",
        "none",
    ),
    (
        "mockserver_upstream",
        "base URL recording forwards to (default https://api.openai.com/v1; "
        "$MOCKSERVER_UPSTREAM overrides it)",
        "string",
        None,
    ),
    (
        "mockserver_api_key_env",
        "environment variable holding the upstream's API key (default OPENAI_API_KEY); unset, "
        "the client's own credentials are forwarded",
        "string",
        "OPENAI_API_KEY",
    ),
    (
        "mockserver_cassette_dir",
        "folder of the cassettes, relative to each test file's folder (default cassettes)",
        "string",
        "cassettes",
    ),
    (
        "mockserver_match_on",
        "request fields a recorded match compares, comma-separated (default model, stream, "
        "messages, tools, response_format, params)",
        "string",
        "",
    ),
    ("mockserver_scrub", "extra regular expressions to scrub from cassettes", "linelist", []),
)


class RecordingSettingsError(Exception):
    """A record mode, marker or ini value the plugin cannot use."""


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver")
    group.addoption(
        "--mockserver-record-mode",
        choices=MODES,
        metavar="MODE",
        help=f"record cassettes from the upstream: {', '.join(MODES)} (default: ini "
        "mockserver_record_mode, else none: replay only, never touch the network)",
    )
    for name, help_, kind, default in INI:
        parser.addini(name, help_, type=kind, default=default)  # type: ignore[arg-type]


def configure(config: pytest.Config) -> None:
    """Register the marker; an unknown ini record mode is a usage error."""
    config.addinivalue_line("markers", MARKER_HELP)
    mode = config.getini("mockserver_record_mode")
    if mode not in MODES:
        raise pytest.UsageError(
            f"ini mockserver_record_mode: unknown record mode {mode!r} "
            f"(allowed: {', '.join(MODES)})"
        )
    if config.getoption("mockserver_record_mode") in (None, "none") and mode == "none":
        return
    _match_on(config)  # a bad mockserver_match_on fails the run, not each test


def _match_on(config: pytest.Config) -> tuple[str, ...]:
    from mockserver.recording.match_on import DEFAULT, MatchOnError, parse_match_on

    text = config.getini("mockserver_match_on")
    if not text:
        return DEFAULT
    try:
        return parse_match_on(text)
    except MatchOnError as exc:
        raise pytest.UsageError(f"ini mockserver_match_on: {exc}") from None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", name).strip("-") or "test"


def record_mode(item: pytest.Item) -> RecordMode:
    """The marker's `record_mode`, else `--mockserver-record-mode`, else the ini option."""
    marker = item.get_closest_marker(MARKER)
    mode = marker.kwargs.get("record_mode") if marker else None
    mode = mode or item.config.getoption("mockserver_record_mode")
    mode = mode or item.config.getini("mockserver_record_mode") or "none"
    if mode not in MODES:
        raise RecordingSettingsError(
            f"@pytest.mark.{MARKER}: unknown record_mode {mode!r} (allowed: {', '.join(MODES)})"
        )
    return cast(RecordMode, mode)


def cassette_path(item: pytest.Item) -> Path:
    """The marker's path, else `<cassette dir>/<module>/<Class.>test.yaml` by the test file."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        unknown = set(marker.kwargs) - {"path", "record_mode"}
        if unknown or len(marker.args) > 1:
            raise RecordingSettingsError(
                f"@pytest.mark.{MARKER} takes a path and record_mode, got "
                f"{marker.args!r} {sorted(marker.kwargs)!r}"
            )
        given = marker.args[0] if marker.args else marker.kwargs.get("path")
        if given:
            path = Path(given)
            return path if path.is_absolute() else item.path.parent / path
    folder: Path = item.path.parent / str(item.config.getini("mockserver_cassette_dir"))
    cls: type | None = getattr(item, "cls", None)
    name = f"{cls.__name__}.{item.name}" if cls is not None else item.name
    return folder / item.path.stem / f"{_safe(name)}.yaml"


def upstream_url(config: pytest.Config) -> str:
    from mockserver.recording.upstream import check_upstream

    raw = os.environ.get("MOCKSERVER_UPSTREAM") or config.getini("mockserver_upstream")
    try:
        return check_upstream(raw or DEFAULT_UPSTREAM)
    except ValueError as exc:
        source = "$MOCKSERVER_UPSTREAM" if os.environ.get("MOCKSERVER_UPSTREAM") else "ini"
        raise RecordingSettingsError(f"mockserver_upstream ({source}): {exc}") from None


def _loaded(path: Path, *, once_each: bool) -> ScenarioSet:
    """The cassette's scenarios (each reply used once in `new_episodes`, so repeats record)."""
    from mockserver.scenarios import ScenarioSet, load_scenarios

    loaded = load_scenarios([path])
    if not once_each:
        return loaded
    return ScenarioSet(
        tuple(dataclasses.replace(s, after="next") for s in loaded.scenarios), loaded.files
    )


def _hint(item: pytest.Item, mock: Mockserver, path: Path) -> None:
    """A test whose requests matched nothing, and has no cassette: say how to record one."""
    if mock.unmatched():
        item.add_report_section(
            "teardown",
            "mockserver",
            f"no cassette at {path}; to record one from the upstream, run with "
            "--mockserver-record-mode=once",
        )


@dataclass(frozen=True, slots=True)
class Cassette:
    """What a test's cassette gives its mock, decided before the mock is built: scenarios to
    replay, in a record mode the engine's `on_miss` hook that records, and what to say at
    teardown."""

    scenarios: ScenarioSet
    on_miss: OnMiss | None
    finish: Callable[[Mockserver], None]


def cassette_for(item: pytest.Item) -> Cassette:
    """The test's cassette: loaded for replay, and in a record mode a `Recorder` that forwards
    what no scenario answers and writes it there."""
    from mockserver.scenarios import ScenarioSet

    mode = record_mode(item)
    path = cassette_path(item)
    exists = path.is_file()
    if mode == "none" or (mode == "once" and exists):
        if exists:
            return Cassette(_loaded(path, once_each=False), None, lambda mock: None)
        return Cassette(ScenarioSet(), None, lambda mock: _hint(item, mock, path))
    from mockserver.recording.cassette import Writer
    from mockserver.recording.forwarding import Recorder
    from mockserver.recording.scrub import Scrubber

    upstream = upstream_url(item.config)
    key_env = item.config.getini("mockserver_api_key_env") or "OPENAI_API_KEY"
    key = os.environ.get(key_env, "").strip() or None
    writer = Writer(
        path,
        one_file=True,
        scrubber=Scrubber(item.config.getini("mockserver_scrub")),
        match_on=_match_on(item.config),
        update=UPDATES[mode],
        origin=f"Recorded by the mockserver pytest plugin ({mode}) from {upstream} "
        f"for {item.nodeid}",
    )
    recorder = Recorder(
        writer=writer,
        upstream=upstream,
        api_key=None if key == PLACEHOLDER_KEY else key,
        missing_key=f"set ${key_env} (ini mockserver_api_key_env names the variable)",
        placeholder_keys=(PLACEHOLDER_KEY,),
    )
    replayed = _loaded(path, once_each=True) if mode == "new_episodes" and exists else None

    def finish(mock: Mockserver) -> None:
        if writer.written:
            item.add_report_section(
                "teardown",
                "mockserver",
                f"recorded {len(writer.written)} exchanges into {path} ({mode})",
            )
        elif mode == "rewrite" and path.is_file():
            path.unlink()  # rewritten to nothing: this run made no request

    return Cassette(replayed or ScenarioSet(), recorder, finish)
