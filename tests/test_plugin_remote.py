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


def test_add_scenario_objects_work_too(mockserver_server):
    mockserver_server.add(reply="x")
""",
        **{"steps.yaml": STEPS, "unused.yaml": UNUSED},
    )
    url = outside.url
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:hypothesispytest", "--mockserver-url", url
    )
    result.assert_outcomes(passed=10, errors=2)  # the unused ones error at teardown
    result.stdout.fnmatch_lines(["*'never' (*unused.yaml:4)*", "*'test_it.py:*' (test_it.py:*)"])
    assert len(outside.app.sessions) == 10  # one session per test, none shared
    assert outside.app.engine.journal == []  # nothing reached the shared state


INLINE_TESTS = """
import base64
from pathlib import Path

from mockserver import builder


def speak(text):
    client = openai.OpenAI(max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o-audio-preview",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "mp3"},
        messages=[{"role": "user", "content": text}],
    ).choices[0].message.audio


def test_add_load_text_and_builder_objects(mockserver_server):
ADD_HI
MADE_BYE
    mockserver_server.add(made)
    mockserver_server.load_text(
        "version: 1\\nscenarios:\\n  - {name: text, match: {last_user_message: mm}, reply: {content: t}}\\n"
    )
    assert ask("hi").choices[0].message.content == "Hello!"
    assert [ask("bye").choices[0].message.content for _ in range(2)] == ["a", "b"]
    assert ask("mm").choices[0].message.content == "t"
    assert mockserver_server.uses() == {"hi": 1, "bye": 2, "text": 1}


def test_audio_files_go_with_their_scenarios(mockserver_server):
    sound = (Path(__file__).parent / "voice" / "hello.mp3").read_bytes()
    mockserver_server.add(
        "from-builder",
        match={"last_user_message": "one"},
        reply=builder.reply(audio=builder.audio("hi", file="voice/hello.mp3")),
    )
    mockserver_server.load_text(
        "scenarios:\\n  - name: from-text\\n    match: {last_user_message: two}\\n"
        "    reply: {audio: {transcript: hi, file: voice/hello.mp3}}\\n"
    )
    mockserver_server.load("spoken.yaml")
    for text in ("one", "two", "three"):
        assert base64.b64decode(speak(text).data) == sound


@pytest.mark.mockserver("spoken.yaml")
def test_marker_files_with_audio(mockserver_server):
    assert speak("three").transcript == "from a file"


def test_a_missing_audio_file_fails_at_the_calling_line(mockserver_server):
    mockserver_server.add(reply=builder.reply(audio=builder.audio("hi", file="nope.mp3")))


def test_a_scenario_not_from_the_builder_says_what_to_do(mockserver_server):
    from mockserver.scenarios import load_text

    mockserver_server.add(load_text("scenarios: [{name: z, reply: {content: z}}]").scenarios[0])
"""
ADD_HI = '    mockserver_server.add("hi", match={"last_user_message": "hi"}, reply="Hello!")'
MADE_BYE = (
    '    made = builder.scenario("bye", match={"last_user_message": "bye"}, sequence=["a", "b"])'
)
INLINE_TESTS = INLINE_TESTS.replace("ADD_HI", ADD_HI).replace("MADE_BYE", MADE_BYE)
SPOKEN_FILE = """
version: 1
scenarios:
  - name: from-file
    match: {last_user_message: three}
    reply: {audio: {transcript: from a file, file: voice/hello.mp3}}
"""


def test_inline_scenarios_and_audio_reach_a_shared_server(pytester, outside):
    """add (keywords and builder objects), load_text and load send what the scenarios were
    read from, with the audio files they name, to the test's session on the shared server;
    the server says they come from where the test wrote them."""
    make(pytester, INLINE_TESTS, **{"spoken.yaml": SPOKEN_FILE})
    (pytester.path / "voice").mkdir()
    (pytester.path / "voice" / "hello.mp3").write_bytes(b"ID3" + bytes(range(256)) * 4)
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "--mockserver-url", outside.url
    )
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_a_missing_audio_file_fails_at_the_calling_line*",
            "*test_it.py:*: reply.audio.file: cannot read audio file*",
            "*scenario 'z' was not made by mockserver.builder.scenario*",
        ]
    )
    assert outside.app.engine.journal == []  # all of it in the tests' sessions
    sessions = outside.app.sessions
    where = {s.name: s.where for n in sessions.names() for s in sessions.own(n)}
    lines = (pytester.path / "test_it.py").read_text().splitlines()
    at = {k: lines.index(t) + 1 for k, t in (("hi", ADD_HI), ("bye", MADE_BYE))}
    assert where["hi"] == f"test_it.py:{at['hi']}"  # the server says where the test wrote it
    assert where["bye"] == f"test_it.py:{at['bye']}"
    assert where["from-file"].endswith("spoken.yaml:4")


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
