"""`Recorder`: the engine's `on_miss` hook that forwards a missed request and records it.

The engine answers what its scenarios match (and refuses what is invalid) without calling it.
On a miss, the request goes upstream (`upstream.fetch`, blocking), the `Writer` writes the
exchange, and the recorder hands the engine the scenario it wrote, used once (a repeat is a
miss again, and records the next reply of the sequence): the engine then answers from it, so
the client gets what a replay of the file will give. A Responses API reply (written as reply
keys) is answered with the upstream's response as it came instead: its ids are the upstream's,
so a `previous_response_id` continuing it can be forwarded as it is. One lookup, then the real
thing on a miss. The pytest plugin's record modes run on it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ApiError
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.upstream import UpstreamError, fetch
from mockserver.scenarios import Scenario, ScenarioSet, read_scenario

RECORD_ERROR = "mockserver_record_error"


class Recorder:
    """Forwards each miss to `upstream`, writes it, and returns the scenario written."""

    def __init__(
        self,
        *,
        writer: Writer,
        upstream: str,
        api_key: str | None = None,
        missing_key: str = "give the recorder an API key",
        placeholder_keys: Iterable[str] = (),
    ) -> None:
        self.writer = writer
        self.upstream = upstream
        self.api_key = api_key
        self._missing_key = missing_key
        self._placeholders = {None, *(f"Bearer {k}".encode() for k in placeholder_keys)}
        self._added = 0

    apis = ("chat", "responses")
    """The APIs it records (the engine asks it about their misses)."""

    def __call__(
        self, raw: bytes, headers: tuple[tuple[bytes, bytes], ...], api: str = "chat"
    ) -> list[Scenario]:
        """Forward and write; raises `ApiError` (a 502, or a 500 for a failed write)."""
        if self.api_key is None and dict(headers).get(b"authorization") in self._placeholders:
            raise _error(
                f"mockserver cannot record without an API key for {self.upstream}: "
                f"{self._missing_key}"
            )
        if api == "responses":
            self._check_continues(raw)
        base, _, query = self.upstream.partition("?")  # e.g. Azure's ?api-version=...
        route = "/responses" if api == "responses" else "/chat/completions"
        url = base.rstrip("/") + route + (f"?{query}" if query else "")
        try:
            exchange = fetch(url, raw, headers, api_key=self.api_key)
        except UpstreamError as exc:
            raise _error(f"mockserver could not record: {exc}") from None
        if exchange.end == "abort" and not exchange.streamed:
            raise _error("the upstream broke off its reply; not recorded")
        try:
            written = self.writer.write(exchange, live=True)
        except RecordingError as exc:
            raise _error(f"mockserver could not write the recording: {exc}", 500) from None
        return [self._scenario(written.mapping, written.path, written.live)]

    def _check_continues(self, raw: bytes) -> None:
        """A Responses request continuing a response this recorder did not record (one the
        cassette or the test's scenarios answered: its id is mockserver's) is refused before it
        goes upstream, which could not know that id either."""
        try:
            previous = json.loads(raw).get("previous_response_id")
        except (ValueError, AttributeError):
            return
        if isinstance(previous, str) and not self.writer.conversations.knows(previous):
            raise _error(
                f"mockserver cannot record this request: it continues the response "
                f"{previous[:100]!r}, which was not recorded in this run (a scenario or the "
                "cassette answered it, so the upstream does not know its id); record the whole "
                "conversation (record mode all or rewrite)"
            )

    def _scenario(
        self, mapping: dict[str, Any], path: Path, live: dict[str, Any] | None
    ) -> Scenario:
        """The written scenario, used once (the name numbered: the file may hold it already),
        answering with `live` if given (a Responses reply: the upstream's response, so that a
        `previous_response_id` continuing it names a response the upstream knows)."""
        self._added += 1
        scenario = {
            "name": f"{mapping['name']}@{self._added}",
            "match": mapping["match"],
            "sequence": [live or mapping["reply"]],
            "after": "next",
        }
        return read_scenario(scenario, file=str(path), base=path.parent)


def _error(message: str, status: int = 502) -> ApiError:
    return ApiError(
        status=status, type=RECORD_ERROR, message=message, headers=(("x-should-retry", "false"),)
    )


def RecordingEngine(  # the former class, kept for one release
    scenarios: ScenarioSet, config: EngineConfig | None = None, **recorder: Any
) -> MockEngine:
    """Deprecated: `MockEngine(scenarios, config, on_miss=Recorder(...))` is the same engine."""
    warnings.warn(
        "RecordingEngine(...) is now MockEngine(scenarios, config, on_miss=Recorder(...)) "
        "(mockserver.recording.forwarding.Recorder); RecordingEngine goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return MockEngine(scenarios, config, on_miss=Recorder(**recorder))
