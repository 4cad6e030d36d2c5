"""`RecordingEngine`: a `MockEngine` that forwards what no scenario answers and records it.

A chat request that a scenario answers (or that is invalid) is answered as usual. A miss is
sent upstream (`upstream.fetch`, blocking), the exchange is written by a `Writer`, and the
engine then answers from the scenario it wrote, used once (a repeat is a miss again, and
records the next reply of the sequence): the client gets what a replay of the file will give.
The pytest plugin's record modes run on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ApiError
from mockserver.outcome import Outcome
from mockserver.recording.cassette import RecordingError, Writer
from mockserver.recording.upstream import UpstreamError, fetch
from mockserver.scenarios import Scenario, ScenarioSet, load_text

RECORD_ERROR = "mockserver_record_error"


class RecordingEngine(MockEngine):
    """Scenarios first; misses are forwarded to `upstream`, written, then answered."""

    def __init__(
        self,
        scenarios: ScenarioSet,
        config: EngineConfig | None = None,
        *,
        writer: Writer,
        upstream: str,
        api_key: str | None = None,
        missing_key: str = "give the recorder an API key",
        placeholder_keys: Iterable[str] = (),
    ) -> None:
        super().__init__(scenarios, config)
        self.writer = writer
        self.upstream = upstream
        self.api_key = api_key
        self._missing_key = missing_key
        self._placeholders = {None, *(f"Bearer {k}".encode() for k in placeholder_keys)}
        self._added = 0

    def handle_chat(self, raw: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> Outcome:
        sent = tuple(headers)
        if not self.answers(raw, sent):
            failure = self._forward(raw, sent)
            if failure is not None:
                return failure
        return super().handle_chat(raw, sent)

    def _forward(self, raw: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> Outcome | None:
        """Forward and write: None when done, else the error to answer."""
        if self.api_key is None and dict(headers).get(b"authorization") in self._placeholders:
            return self._error(
                f"mockserver cannot record without an API key for {self.upstream}: "
                f"{self._missing_key}"
            )
        base, _, query = self.upstream.partition("?")  # e.g. Azure's ?api-version=...
        url = base.rstrip("/") + "/chat/completions" + (f"?{query}" if query else "")
        try:
            exchange = fetch(url, raw, headers, api_key=self.api_key)
        except UpstreamError as exc:
            return self._error(f"mockserver could not record: {exc}")
        if exchange.end == "abort" and not exchange.streamed:
            return self._error("the upstream broke off its reply; not recorded")
        try:
            written = self.writer.write(exchange)
        except RecordingError as exc:
            return self._error(f"mockserver could not write the recording: {exc}", 500)
        self.add_scenarios([self._scenario(written.mapping, written.path)])
        return None

    def _scenario(self, mapping: dict[str, Any], path: Path) -> Scenario:
        self._added += 1
        scenario = {
            "name": f"{mapping['name']}@{self._added}",
            "match": mapping["match"],
            "sequence": [mapping["reply"]],
            "after": "next",
        }
        loaded = load_text(yaml.safe_dump({"scenarios": [scenario]}), str(path), path.parent)
        return loaded.scenarios[0]

    def _error(self, message: str, status: int = 502) -> Outcome:
        return self.error_outcome(
            ApiError(
                status=status,
                type=RECORD_ERROR,
                message=message,
                headers=(("x-should-retry", "false"),),
            )
        )
