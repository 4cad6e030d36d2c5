"""The pytest11 entry point: mockserver's fixtures, marker and options.

- `mockserver`: scenarios served in process (no socket) to httpx and httpx2 clients, for
  `https://api.openai.com/v1`, `$OPENAI_BASE_URL` and any `base_url` configured.
- `mockserver_server`: the same through a real uvicorn server on 127.0.0.1 (one per session,
  or per xdist worker), or the server at `--mockserver-url URL`; each test gets a session of
  its own on it (`/_mockserver/sessions/NAME/v1`); sets `OPENAI_BASE_URL` for the test.
- `mockserver_session_server`: that session-wide `BackgroundServer` itself.
- marker `@pytest.mark.mockserver(*paths, ...)`, options `--mockserver-*`, ini `mockserver_*`.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from . import recording
from .settings import (
    MARKER_HELP,
    SettingsError,
    add_options,
    load_cached,
    settings_for,
)

# The mock itself (starlette, uvicorn, httpx, respx) is imported by the fixtures that use it:
# installing mockserver must not slow down every pytest start.
if TYPE_CHECKING:
    from mockserver.server import BackgroundServer

    from .mock import Mockserver, Serving

API_KEY = "sk-mockserver"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    recording.add_options(parser)
    parser.getgroup("mockserver").addoption(
        "--mockserver-url",
        metavar="URL",
        help="run mockserver_server tests against the mockserver at URL (started outside "
        "pytest, shared by xdist workers), each test in a session of its own",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    recording.configure(config)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report: the teardown checks run only after a passing test."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _build(request: pytest.FixtureRequest, mode: Serving, url: str) -> Mockserver:
    from mockserver.errors import ScenarioError

    from .mock import Mockserver

    try:
        settings = settings_for(request.node)
        cassette = recording.cassette_for(request.node)  # in a record mode, it records misses
        mock = Mockserver(
            mode,
            url,
            settings,
            load_cached(settings.shared_paths),
            load_cached(settings.own_paths),
            cassette=cassette.scenarios,
            on_miss=cassette.on_miss,
        )
        request.addfinalizer(lambda: cassette.finish(mock))
        return mock
    except (SettingsError, recording.RecordingSettingsError) as exc:
        pytest.fail(f"mockserver: {exc}", pytrace=False)
    except ScenarioError as exc:
        problems = "\n".join(f"  {p}" for p in exc.problems)
        pytest.fail(f"mockserver: this test's scenarios do not load:\n{problems}", pytrace=False)


def _check(request: pytest.FixtureRequest, mock: Mockserver) -> None:
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is None or not call.passed:
        return  # the test failed or was skipped already: its own report says enough
    message = mock.strictness_failures()
    if message is not None:
        pytest.fail(message, pytrace=False)


def _default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK refuses to start without a key; the mock accepts any."""
    if not os.environ.get("OPENAI_API_KEY"):
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


@pytest.fixture
def mockserver(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Mockserver]:
    """Scenarios answered in process: httpx (respx) and httpx2 (openai >= 3) clients, no socket.

    Mocks `https://api.openai.com/v1`, `$OPENAI_BASE_URL` when set, the marker's `base_url`
    and ini `mockserver_base_urls`; `mockserver.add_base_url(url)` adds more.
    """
    from mockserver.inprocess import DEFAULT_BASE_URL, InProcessMock

    env_url = os.environ.get("OPENAI_BASE_URL") or None
    mock = _build(request, "inprocess", env_url or DEFAULT_BASE_URL)
    bases = [DEFAULT_BASE_URL, *mock.settings.base_urls, *([env_url] if env_url else [])]
    try:
        patch = InProcessMock(mock.engine, bases, unmatched=mock.settings.unmatched_hosts)
    except ValueError as exc:
        pytest.fail(f"mockserver: {exc}", pytrace=False)
    _default_key(monkeypatch)
    mock.inprocess = patch
    with patch:
        yield mock
    _check(request, mock)


@pytest.fixture(scope="session")
def mockserver_session_server() -> Iterator[BackgroundServer]:
    """The uvicorn server behind `mockserver_server`: one per session (per xdist worker)."""
    from mockserver.app import create_app
    from mockserver.engine import MockEngine
    from mockserver.scenarios import ScenarioSet
    from mockserver.server import BackgroundServer

    server = BackgroundServer(create_app(MockEngine(ScenarioSet()))).start()
    yield server
    server.stop()


@pytest.fixture
def mockserver_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Mockserver]:
    """Scenarios answered by a real HTTP server; `OPENAI_BASE_URL` points at it.

    The server lives for the whole session (or is the one at `--mockserver-url`); each test
    gets a session of its own on it (its own scenarios, sequences and journal), whose base
    URL `/_mockserver/sessions/NAME/v1` is the test's `url`.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    remote_url = request.config.getoption("mockserver_url")
    if remote_url:
        yield from _remote(request, monkeypatch, remote_url, worker)
        return
    from .remote import session_name

    server: BackgroundServer = request.getfixturevalue("mockserver_session_server")
    name = session_name(worker)
    root = server.url.removesuffix("/v1")
    mock = _build(request, "server", f"{root}/_mockserver/sessions/{name}/v1")
    sessions = server.app.sessions
    sessions.install(name, mock.engine)
    monkeypatch.setenv("OPENAI_BASE_URL", mock.url)
    _default_key(monkeypatch)
    try:
        yield mock
        _check(request, mock)
    finally:
        sessions.drop(name)


def _remote(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, url: str, worker: str
) -> Iterator[Mockserver]:
    from .remote import RemoteEngine, RemoteError, session_name

    name = session_name(worker)
    engine_url = f"{url.rstrip('/').removesuffix('/v1')}/_mockserver/sessions/{name}/v1"
    mock = _build(request, "server", engine_url)
    remote = RemoteEngine(url, name, mock.engine.scenarios)
    try:
        remote.upload([*mock.settings.shared_paths, *mock.settings.own_paths])
    except RemoteError as exc:
        pytest.fail(f"mockserver: {exc}", pytrace=False)
    mock.engine = remote
    monkeypatch.setenv("OPENAI_BASE_URL", mock.url)
    _default_key(monkeypatch)
    yield mock
    _check(request, mock)
