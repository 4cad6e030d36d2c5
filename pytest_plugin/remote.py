"""`--mockserver-url URL`: `mockserver_server` on a server started outside pytest.

Each test gets a session of its own on that server (`/_mockserver/sessions/NAME/v1`), so
xdist workers and parallel jobs can share it. The test's scenario files (marker, ini) are sent
to its session through the control API; its journal and use counts are read back from it, so
`calls`, `assert_called` and the teardown checks work as with a local server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

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
        files = scenario_files(paths)
        self._call("PUT", "scenarios", content=b"scenarios: []\n", headers=_YAML)
        for file in files:
            self._call("POST", "scenarios", content=file.read_bytes(), headers=_YAML)

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> None:
        raise RemoteError(
            "with --mockserver-url, a test's scenarios come from files (the marker, "
            "mockserver_scenarios_dir): the remote server cannot be sent Python objects"
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
