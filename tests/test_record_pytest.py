"""The plugin's record modes, run as users run them: `pytester` sessions against a local
upstream (a second mockserver on 127.0.0.1, reached with `http.client`)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import load_scenarios, load_text
from mockserver.server import BackgroundServer
from tests.test_plugin import _everything_imported  # noqa: F401 - the same imports, once

KEY = "sk-proj-PytestRecordingKey0123456789abcdefgh"
UPSTREAM = """
scenarios:
  - name: hello
    match: {last_user_message: hello}
    reply: {content: "Hello there."}
  - name: bye
    match: {last_user_message: bye}
    reply: {content: "Goodbye."}
  - name: count
    match: {last_user_message: count}
    reply: {content: "one two three"}
  - name: again
    match: {last_user_message: again}
    sequence: [{content: first}, {content: second}, {content: third}]
  - name: flaky
    match: {last_user_message: flaky}
    sequence: [{error: 429}, {content: "worked the second time"}]
"""

HEADER = """
import openai
import pytest


def ask(text, retries=0, **kwargs):
    client = openai.OpenAI(max_retries=retries)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kwargs
    )
    return reply.choices[0].message.content


def stream(text):
    client = openai.OpenAI(max_retries=0)
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True},
    ))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[-1].usage
"""


class Upstream:
    def __init__(self) -> None:
        self.engine = MockEngine(load_text(UPSTREAM, "upstream.yaml"), EngineConfig(seed=2))
        self.server = BackgroundServer(create_app(self.engine)).start()

    @property
    def asked(self) -> list[str]:
        return [e.request.last_user_message for e in self.engine.journal]


@pytest.fixture
def upstream(monkeypatch) -> Iterator[Upstream]:
    up = Upstream()
    monkeypatch.setenv("MOCKSERVER_UPSTREAM", up.server.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield up
    up.server.stop()


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", "--strict-markers", *args)


def make(pytester: pytest.Pytester, body: str) -> Path:
    pytester.makepyfile(test_it=HEADER + textwrap.dedent(body))
    return pytester.path / "cassettes" / "test_it"


def test_once_records_then_replays_without_the_network(pytester, upstream):
    cassettes = make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
            assert stream("count")[0] == "one two three"
            assert stream("count")[1].total_tokens > 0
            mockserver.assert_called(3)
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)
    assert upstream.asked == ["hello", "count", "count"]
    assert [e.request.headers["authorization"] for e in upstream.engine.journal] == [
        f"Bearer {KEY}"
    ] * 3
    cassette = cassettes / "test_chat.yaml"
    text = cassette.read_text()
    assert KEY not in text
    assert "Recorded by the mockserver pytest plugin (once)" in text
    scenarios = load_scenarios([cassette]).scenarios
    assert [len(s.replies) for s in scenarios] == [1, 2]  # the repeated stream: a sequence

    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)  # it exists: replay
    run(pytester).assert_outcomes(passed=1)  # none, the default
    assert len(upstream.asked) == 3  # the network was not touched again
    assert cassette.read_text() == text


def test_none_never_touches_the_network(pytester, upstream):
    make(
        pytester,
        """
        def test_chat(mockserver):
            with pytest.raises(openai.NotFoundError):
                ask("hello")
        """,
    )
    result = run(pytester, "--mockserver-record-mode=none")
    result.assert_outcomes(passed=1, errors=1)  # the teardown check: a request matched nothing
    result.stdout.fnmatch_lines(
        [
            "*no cassette at *test_chat.yaml; to record one from the upstream, run with "
            "--mockserver-record-mode=once*"
        ]
    )
    assert upstream.asked == []
    assert not (pytester.path / "cassettes").exists()


def test_new_episodes_replays_what_it_has_and_records_the_rest(pytester, upstream):
    cassettes = make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
            assert ask("again") == "first"
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)
    make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
            assert ask("again") == "first"
            assert ask("again") == "second"
            assert ask("bye") == "Goodbye."
        """,
    )
    run(pytester, "--mockserver-record-mode=new_episodes").assert_outcomes(passed=1)
    assert upstream.asked == ["hello", "again", "again", "bye"]  # the second "again" is new
    scenarios = load_scenarios([cassettes / "test_chat.yaml"]).scenarios
    assert [(s.name, len(s.replies)) for s in scenarios] == [
        ("test_chat-1", 1),
        ("test_chat-2", 2),
        ("test_chat-3", 1),
    ]
    run(pytester).assert_outcomes(passed=1)
    assert len(upstream.asked) == 4


def test_all_records_again_and_keeps_the_rest(pytester, upstream):
    cassettes = make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
            assert ask("bye") == "Goodbye."
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)
    make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
        """,
    )
    run(pytester, "--mockserver-record-mode=all").assert_outcomes(passed=1)
    run(pytester, "--mockserver-record-mode=all").assert_outcomes(passed=1)
    assert upstream.asked == ["hello", "bye", "hello", "hello"]
    scenarios = load_scenarios([cassettes / "test_chat.yaml"]).scenarios
    assert [(s.name, len(s.replies)) for s in scenarios] == [("test_chat-1", 1), ("test_chat-2", 1)]


def test_rewrite_starts_the_cassette_afresh(pytester, upstream):
    cassettes = make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("hello") == "Hello there."
            assert ask("bye") == "Goodbye."
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)
    make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("bye") == "Goodbye."

        def test_nothing(mockserver):
            pass
        """,
    )
    (cassettes / "test_nothing.yaml").write_text("scenarios: []\n")
    run(pytester, "--mockserver-record-mode=rewrite").assert_outcomes(passed=2)
    (only,) = load_scenarios([cassettes / "test_chat.yaml"]).scenarios
    assert only.name == "test_chat-1"
    assert "bye" in (cassettes / "test_chat.yaml").read_text()
    assert not (cassettes / "test_nothing.yaml").exists()  # rewritten to nothing


def test_an_error_and_the_retry_are_recorded_as_a_sequence(pytester, upstream):
    cassettes = make(
        pytester,
        """
        def test_chat(mockserver):
            assert ask("flaky", retries=2) == "worked the second time"
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=1)
    (scenario,) = load_scenarios([cassettes / "test_chat.yaml"]).scenarios
    assert [r.raw.status for r in scenario.replies] == [429, 200]
    run(pytester).assert_outcomes(passed=1)
    assert upstream.asked == ["flaky", "flaky"]


def test_the_marker_names_the_cassette_and_its_mode(pytester, upstream):
    make(
        pytester,
        """
        @pytest.mark.mockserver_cassette("shared/chat.yaml", record_mode="once")
        def test_server(mockserver_server):
            assert ask("hello") == "Hello there."
        """,
    )
    run(pytester).assert_outcomes(passed=1)
    assert (pytester.path / "shared" / "chat.yaml").is_file()
    assert upstream.asked == ["hello"]


def test_parametrized_and_class_tests_get_their_own_cassettes(pytester, upstream):
    cassettes = make(
        pytester,
        """
        @pytest.mark.parametrize("text", ["hello", "bye"])
        def test_each(mockserver, text):
            assert ask(text)

        class TestGroup:
            def test_one(self, mockserver):
                assert ask("hello")
        """,
    )
    run(pytester, "--mockserver-record-mode=once").assert_outcomes(passed=3)
    assert sorted(p.name for p in cassettes.iterdir()) == [
        "TestGroup.test_one.yaml",
        "test_each-bye.yaml",
        "test_each-hello.yaml",
    ]


def test_recording_without_a_key_says_how_to_give_one(pytester, upstream, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    make(
        pytester,
        """
        def test_chat(mockserver):
            with pytest.raises(openai.APIStatusError) as failed:
                ask("hello")
            assert failed.value.status_code == 502
            assert "cannot record without an API key" in failed.value.message
            assert "set $OPENAI_API_KEY" in failed.value.message
        """,
    )
    run(pytester, "--mockserver-record-mode=once", "--mockserver-lenient").assert_outcomes(passed=1)
    assert upstream.asked == []


def test_an_unreachable_upstream_fails_the_request(pytester, upstream, monkeypatch):
    monkeypatch.setenv("MOCKSERVER_UPSTREAM", "http://127.0.0.1:9/v1")
    make(
        pytester,
        """
        def test_chat(mockserver):
            with pytest.raises(openai.APIStatusError) as failed:
                ask("hello")
            assert failed.value.status_code == 502
            assert "could not record: cannot reach http://127.0.0.1:9/v1" in failed.value.message
        """,
    )
    run(pytester, "--mockserver-record-mode=once", "--mockserver-lenient").assert_outcomes(passed=1)


def test_an_unknown_mode_is_a_usage_error_naming_the_modes(pytester):
    make(pytester, "def test_x():\n    pass\n")
    result = run(pytester, "--mockserver-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --mockserver-record-mode: invalid choice: 'sometimes' (choose from*none*once*"
            "new_episodes*all*rewrite*"
        ]
    )
    pytester.makeini("[pytest]\nmockserver_record_mode = always\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*ini mockserver_record_mode: unknown record mode 'always' (allowed: none, once, "
            "new_episodes, all, rewrite)*"
        ]
    )


def test_bad_ini_values_and_markers_say_what_is_allowed(pytester, upstream, monkeypatch):
    pytester.makeini("[pytest]\nmockserver_match_on = model,mesages\n")
    make(pytester, "def test_x(mockserver):\n    pass\n")
    result = run(pytester, "--mockserver-record-mode=once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini mockserver_match_on: unknown field 'mesages'*"])

    pytester.makeini("[pytest]\n")
    make(
        pytester,
        """
        @pytest.mark.mockserver_cassette(record_mode="sometimes")
        def test_mode(mockserver):
            pass

        @pytest.mark.mockserver_cassette("a.yaml", "b.yaml")
        def test_paths(mockserver):
            pass
        """,
    )
    result = run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*unknown record_mode 'sometimes' (allowed: none, once, new_episodes, all, rewrite)*",
            "*mockserver_cassette takes a path and record_mode*",
        ]
    )
    monkeypatch.setenv("MOCKSERVER_UPSTREAM", "api.openai.com")
    make(pytester, "def test_x(mockserver):\n    pass\n")
    result = run(pytester, "--mockserver-record-mode=once")
    result.stdout.fnmatch_lines(
        ["*mockserver_upstream ($MOCKSERVER_UPSTREAM): expected the upstream*"]
    )
