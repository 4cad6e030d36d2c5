"""Fixtures: a real uvicorn server on 127.0.0.1 port 0, and strict openai SDK clients on it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import ScenarioSet, load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.support import SchemaCheckingTransport, Violations

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def violations() -> Iterator[Violations]:
    """Every reply read through `sdk_clients` is checked against OpenAI's schema."""
    found = Violations()
    yield found
    assert not found.found, "replies that break OpenAI's schema:\n" + "\n".join(found.found)


@dataclass
class Live:
    """A running server and strict SDK clients pointed at it."""

    url: str
    engine: MockEngine
    client: openai.OpenAI
    aclient: openai.AsyncOpenAI


def make_clients(
    url: str, violations: Violations, **kwargs: object
) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    transport = SchemaCheckingTransport(violations)
    client = openai.OpenAI(
        base_url=url,
        api_key="sk-test-key",
        http_client=httpx2.Client(transport=transport),
        _strict_response_validation=True,
        **kwargs,  # type: ignore[arg-type]
    )
    aclient = openai.AsyncOpenAI(
        base_url=url,
        api_key="sk-test-key",
        http_client=httpx2.AsyncClient(transport=transport),
        _strict_response_validation=True,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, aclient


@pytest.fixture
def live(violations: Violations) -> Iterator[Callable[..., Live]]:
    """`live(yaml_text_or_paths, **engine_config)` starts a server and gives clients for it."""
    servers: list[BackgroundServer] = []

    def start(scenarios: str | list[str | Path] | ScenarioSet, **config: object) -> Live:
        if isinstance(scenarios, ScenarioSet):
            loaded = scenarios
        elif isinstance(scenarios, str):
            loaded = load_text(textwrap.dedent(scenarios), "test.yaml")
        else:
            loaded = load_scenarios(scenarios)
        engine = MockEngine(loaded, EngineConfig(**config))  # type: ignore[arg-type]
        server = BackgroundServer(create_app(engine)).start()
        servers.append(server)
        client, aclient = make_clients(server.url, violations)
        return Live(server.url, engine, client, aclient)

    yield start
    for server in servers:
        server.stop()
