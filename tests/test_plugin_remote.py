"""`mockserver_server` with a session per test: on the fixture's own server, and on a server
started outside pytest (`--mockserver-url`) shared by xdist workers."""

from __future__ import annotations

import pytest

from mockserver.app import create_app
from mockserver.engine import MockEngine
from mockserver.scenarios import ScenarioSet
from mockserver.server import BackgroundServer
from tests.test_plugin import HEADER, make

STEPS = """
version: 1
scenarios:
  - name: steps
    sequence: [{content: first}, {content: second}]
    after: error
"""
UNUSED = """
version: 1
scenarios:
  - name: never
    match: {model: nobody}
    reply: {content: x}
"""


@pytest.fixture
def outside():
    with BackgroundServer(create_app(MockEngine(ScenarioSet()))) as server:
        yield server


def test_xdist_workers_share_one_outside_server_each_test_in_its_own_session(pytester, outside):
    make(
        pytester,
        """
import os

@pytest.mark.mockserver("steps.yaml")
@pytest.mark.parametrize("n", range(8))
def test_sequence(mockserver_server, n):
    assert "/_mockserver/sessions/pytest-" in os.environ["OPENAI_BASE_URL"]
    assert ask("x").choices[0].message.content == "first"
    assert ask("x").choices[0].message.content == "second"
    assert mockserver_server.uses() == {"steps": 2}
    assert [c.scenario for c in mockserver_server.calls] == ["steps", "steps"]
    mockserver_server.assert_called(2, scenario="steps")


@pytest.mark.mockserver("unused.yaml")
def test_unused_is_reported_at_teardown(mockserver_server):
    pass


def test_add_says_what_works_instead(mockserver_server):
    mockserver_server.add(reply="x")
""",
        **{"steps.yaml": STEPS, "unused.yaml": UNUSED},
    )
    url = outside.url
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:hypothesispytest", "--mockserver-url", url
    )
    result.assert_outcomes(passed=9, failed=1, errors=1)  # the unused one errors at teardown
    result.stdout.fnmatch_lines(["*'never' (*unused.yaml:4)*", "*cannot be sent Python objects*"])
    assert len(outside.app.sessions) == 10  # one session per test, none shared
    assert outside.app.engine.journal == []  # nothing reached the shared state


def test_an_unreachable_url_fails_the_test_with_the_reason(pytester):
    make(
        pytester,
        "\n@pytest.mark.mockserver('steps.yaml')\ndef test_it(mockserver_server):\n    pass\n",
        **{"steps.yaml": STEPS},
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "--mockserver-url", "http://127.0.0.1:9"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot reach the mockserver at http://127.0.0.1:9*"])


assert HEADER
