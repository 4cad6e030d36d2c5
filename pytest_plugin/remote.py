"""`--mockserver-url URL`: `mockserver_server` on a server started outside pytest.

Each test gets a session of its own on that server (`/_mockserver/sessions/NAME/v1`), so
xdist workers and parallel jobs can share it. The test's scenarios (marker and ini files,
`load`, `load_text`, `add`) are sent to its session through the control API, as their text
with the audio files they name (a bundle, `control.Bundle`), and said to come from where they
were written, so the server's journal page shows the same `file:line` as the test's reports.
Its journal and use counts are read back from it, so `calls`, `assert_called` and the
teardown checks work as with a local server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from mockserver import audio, builder
from mockserver.engine import EngineConfig, JournalEntry, MockEngine
from mockserver.errors import ApiError
from mockserver.scenarios import Scenario, ScenarioSet, scenario_files

TIMEOUT = 10.0


class RemoteError(Exception):
    """The server at --mockserver-url refused or could not be reached (the message says why)."""


def session_name(worker: str) -> str:
    return f"pytest-{worker}-{uuid.uuid4().hex[:12]}"


def root_of(url: str) -> str:
    """`http://host:port` from `http://host:port` or `http://host:port/v1`."""
    return url.rstrip("/").removesuffix("/v1")


class RemoteEngine(MockEngine):
    """A test's session on a remote server: the scenarios are known here (names, files and
    lines), the requests and sequence positions are the server's."""

    def __init__(self, url: str, session: str, scenarios: ScenarioSet) -> None:
        super().__init__(scenarios, EngineConfig())
        self.root = root_of(url)
        self.session = session

    @property
    def url(self) -> str:
        return f"{self.root}/_mockserver/sessions/{self.session}/v1"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {"session": self.session, **kwargs.pop("params", {})}
        try:
            response = httpx.request(
                method, f"{self.root}/_mockserver/{path}", params=params, timeout=TIMEOUT, **kwargs
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the mockserver at {self.root}: {exc}") from None
        body = response.json()
        if response.status_code >= 400:
            problems = "".join(f"\n  {p}" for p in body.get("problems", []))
            message = body.get("error", {}).get("message", response.text)
            raise RemoteError(f"{self.root} answered {response.status_code}: {message}{problems}")
        return body

    def upload(self, paths: Sequence[Path]) -> None:
        """Make these files' scenarios the session's own (a fresh session: PUT, then POST)."""
        self._call("PUT", "scenarios", content=b"scenarios: []\n", headers=_YAML)
        for sent in file_sources(paths):
            self.send(sent)

    def add_sent(self, scenarios: Iterable[Scenario], sources: Iterable[Sent]) -> None:
        """Add scenarios here (names, files and lines for the reports) and send what they
        were read from to the session."""
        super().add_scenarios(scenarios)
        for sent in sources:
            self.send(sent)

    def send(self, sent: Sent) -> None:
        """POST one scenario text to the session: as it is, or with its audio as a bundle."""
        files = {name: _read_audio(sent.base, name) for name in audio_names(sent.document)}
        params = {"source": sent.label[-MAX_LABEL:]}
        if not files:
            self._call(
                "POST", "scenarios", content=sent.document.encode(), headers=_YAML, params=params
            )
            return
        bundle = {
            "document": sent.document,
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
        }
        self._call("POST", "scenarios", json=bundle, params=params)

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> None:
        raise RemoteError(
            "with --mockserver-url, scenarios reach the server through the test's mock "
            "(mockserver_server.add, load, load_text), which sends what they were read from"
        )

    @property
    def journal(self) -> list[JournalEntry]:
        data = self._call("GET", "journal", params={"limit": "1000"})["data"]
        return [_entry(item) for item in data]

    def uses(self) -> dict[str, int]:
        data = self._call("GET", "scenarios")["data"]
        return {item["name"]: item["uses"] for item in data}

    def reset(self) -> None:
        self._call("POST", "reset", headers=_JSON, content=b"{}")


MAX_LABEL = 200
"""The control API's longest `source` label (`control.MAX_SOURCE`): longer paths keep their
end."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A scenario text to send, the folder its audio `file:` names are relative to, and the
    label the server shows as its file (the test's `file:line`, or the file's path)."""

    document: str
    base: Path
    label: str


def file_sources(paths: Iterable[str | Path]) -> list[Sent]:
    """The scenario files (and folders' files) to send, each as its text."""
    return [Sent(f.read_text(encoding="utf-8"), f.parent, str(f)) for f in scenario_files(paths)]


def builder_source(scenario: Scenario) -> Sent:
    """A builder scenario as a JSON scenario file placing it on the line it was written at
    (blank lines first), so that the server says it is where the test says it is."""
    source = builder.source_of(scenario)
    if source is None:
        raise RemoteError(
            f"scenario {scenario.name!r} was not made by mockserver.builder.scenario (or by "
            "add's keywords), so there is nothing to send to the server at --mockserver-url: "
            "pass its keys to mockserver_server.add(...), or use load_text / load"
        )
    document = {"version": 1, "strict": source.strict, "scenarios": [source.mapping]}
    blank = "\n" * ((scenario.line or 1) - 1)
    return Sent(blank + json.dumps(document), source.base, scenario.file)


def audio_names(document: str) -> list[str]:
    """The audio files a scenario text names (`audio: {file: NAME}`, anywhere in it)."""
    try:
        tree = yaml.safe_load(document)
    except yaml.YAMLError:
        return []  # the server says what is wrong with it
    return sorted(set(_names(tree)))


def _names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        spoken = value.get("audio")
        if isinstance(spoken, dict) and isinstance(spoken.get("file"), str):
            yield spoken["file"]
        for item in value.values():
            yield from _names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)


def _read_audio(base: Path, name: str) -> bytes:
    try:
        return audio.read_file((base / name).resolve(), base)
    except audio.FileRefused as exc:
        raise RemoteError(f"cannot send the audio file {name!r}: {exc}") from None


_YAML = {"content-type": "application/yaml", "x-mockserver-admin": "1"}
_JSON = {"content-type": "application/json"}


def _entry(item: dict[str, Any]) -> JournalEntry:
    error = item["error"]
    return JournalEntry(
        raw=json.dumps(item["request"]).encode(),
        headers=tuple((k.encode(), v.encode()) for k, v in item["headers"].items()),
        status=item["status"],
        scenario=item["scenario"],
        reply_index=item["reply_index"],
        error=ApiError(
            status=item["status"],
            message=error["message"],
            type=error["type"],
            param=error.get("param"),
            code=error.get("code"),
        )
        if error
        else None,
        at=item["at"],
    )
