"""The pytest plugin, run the way users run it: `pytester` sessions with our fixtures.

Inner sessions run in this process (`runpytest`) except the xdist one, which needs workers.
pytester forgets the modules an inner session imports. A module imported again is a new
module: its classes are new classes, while modules imported before keep references to the old
ones (httpx2 maps httpcore2's exceptions through a table filled once, so a later test got a raw
`httpcore2.ConnectError`), and each inner session would import the openai SDK again. So
`_everything_imported` does, once, what the inner sessions do: serve and call in process and
over a socket, with httpx and httpx2.
"""

from __future__ import annotations

import re

import anyio
import anyio.pytest_plugin
import httpx
import httpx2
import openai  # noqa: F401
import pytest

from mockserver import builder  # noqa: F401
from mockserver.app import create_app
from mockserver.engine import MockEngine
from mockserver.inprocess import DEFAULT_BASE_URL, InProcessMock
from mockserver.pytest_plugin import mock  # noqa: F401
from mockserver.scenarios import ScenarioSet
from mockserver.server import BackgroundServer


@pytest.fixture(scope="module", autouse=True)
def _everything_imported():
    engine = MockEngine(ScenarioSet())

    async def call_async(url: str) -> None:
        for lib in (httpx, httpx2):
            async with lib.AsyncClient() as client:
                await client.get(url + "/models")
                await client.get(DEFAULT_BASE_URL + "/models")

    with BackgroundServer(create_app(engine)) as server, InProcessMock(engine):
        for lib in (httpx, httpx2):
            with lib.Client() as client:
                client.get(server.url + "/models")
                client.get(DEFAULT_BASE_URL + "/models")
        anyio.run(call_async, server.url)


HEADER = """
import openai
import pytest
from mockserver.builder import reply, tool_call, error


def ask(text, **kwargs):
    client = openai.OpenAI(max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kwargs
    )
"""

GREETINGS = """
version: 1
scenarios:
  - name: greet
    match: {last_user_message: hi}
    reply: {content: "Hello!"}
  - name: farewell
    match: {last_user_message: bye}
    reply: {content: "Goodbye!"}
"""


def make(pytester: pytest.Pytester, body: str, **files: str) -> None:
    pytester.makepyfile(test_it=HEADER + body)
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", "--strict-markers", *args)


# -- passing tests ------------------------------------------------------------------------------


def test_inline_scenarios_sync_async_and_streams(pytester):
    make(
        pytester,
        """
def test_sync(mockserver):
    mockserver.add("greet", match={"last_user_message": "hi"}, reply="Hello!")
    assert ask("hi").choices[0].message.content == "Hello!"
    mockserver.assert_called(1, scenario="greet")
    mockserver.assert_last_request(model="gpt-4o-mini", last_user_message="hi", stream=False)


def test_stream_and_tools(mockserver):
    mockserver.add(reply=reply(tool_calls=[tool_call("get_weather", {"city": "Paris"})]))
    chunks = list(ask("weather?", stream=True))
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices]
    assert calls[0][0].function.name == "get_weather"
    assert mockserver.last_call.stream


@pytest.mark.anyio
async def test_async(mockserver):
    mockserver.add(reply="async hello")
    client = openai.AsyncOpenAI(max_retries=0)
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async hello"
""",
    )
    run(pytester).assert_outcomes(passed=3)


def test_server_fixture_sets_the_base_url_and_resets_between_tests(pytester):
    make(
        pytester,
        """
import os
URLS = []

@pytest.mark.parametrize("round", [1, 2])
def test_sequence_restarts(mockserver_server, round):
    mockserver_server.add("seq", sequence=["first", "second"])
    assert os.environ["OPENAI_BASE_URL"] == mockserver_server.url
    assert mockserver_server.url.startswith("http://127.0.0.1:")
    URLS.append(mockserver_server.url.split("/_mockserver/sessions/")[0])
    assert ask("x").choices[0].message.content == "first"
    assert ask("x").choices[0].message.content == "second"
    assert len(mockserver_server.calls) == 2


def test_one_server_per_session(mockserver_server):
    mockserver_server.add(reply="ok")
    assert ask("x").choices[0].message.content == "ok"
    assert set(URLS) == {mockserver_server.url.split("/_mockserver/sessions/")[0]}
""",
    )
    run(pytester).assert_outcomes(passed=3)


def test_yaml_from_the_marker_relative_to_the_test_file(pytester):
    make(
        pytester,
        """
@pytest.mark.mockserver("scenarios/greetings.yaml")
def test_both(mockserver):
    assert ask("hi").choices[0].message.content == "Hello!"
    assert ask("bye").choices[0].message.content == "Goodbye!"
    assert mockserver.uses() == {"greet": 1, "farewell": 1}
""",
        **{"scenarios/greetings.yaml": GREETINGS},
    )
    run(pytester).assert_outcomes(passed=1)


def test_ini_scenarios_dir_is_shared_and_not_checked_for_use(pytester):
    pytester.makeini("[pytest]\nmockserver_scenarios_dir = shared\n")
    make(
        pytester,
        """
def test_uses_one_of_two(mockserver):
    assert ask("hi").choices[0].message.content == "Hello!"


@pytest.mark.mockserver("greetings.yaml")
def test_marker_paths_are_looked_up_in_the_scenarios_dir_too(mockserver):
    assert ask("bye").choices[0].message.content == "Goodbye!"
    assert ask("hi").choices[0].message.content == "Hello!"
""",
        **{"shared/greetings.yaml": GREETINGS},
    )
    run(pytester).assert_outcomes(passed=2)


def test_cli_scenarios_dir_overrides_the_ini(pytester):
    pytester.makeini("[pytest]\nmockserver_scenarios_dir = nowhere\n")
    make(
        pytester,
        """
def test_it(mockserver):
    assert ask("hi").choices[0].message.content == "Hello!"
""",
        **{"other/greetings.yaml": GREETINGS},
    )
    run(pytester, "--mockserver-scenarios-dir", str(pytester.path / "other")).assert_outcomes(
        passed=1
    )


def test_module_marker_is_shared_and_a_test_marker_adds_to_it(pytester):
    make(
        pytester,
        """
pytestmark = pytest.mark.mockserver("greetings.yaml")


def test_module_scenarios_are_not_checked_for_use(mockserver):
    assert ask("hi").choices[0].message.content == "Hello!"


@pytest.mark.mockserver("more.yaml", seed=5)
def test_own_marker_adds_files(mockserver):
    assert ask("more").choices[0].message.content == "More!"
    assert {s.name for s in mockserver.scenarios} == {"greet", "farewell", "more"}
    assert mockserver.settings.seed == 5
""",
        **{
            "greetings.yaml": GREETINGS,
            "more.yaml": "version: 1\nscenarios:\n  - name: more\n    reply: {content: More!}\n",
        },
    )
    run(pytester).assert_outcomes(passed=2)


def test_seed_option_makes_ids_repeat(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add(reply="x")
    print("ID", ask("x").id)
""",
    )
    ids = []
    for _ in range(2):
        result = run(pytester, "-s", "--mockserver-seed", "11")
        result.assert_outcomes(passed=1)
        ids += re.findall(r"ID (chatcmpl-\w+)", result.stdout.str())
    assert len(ids) == 2
    assert ids[0] == ids[1]


def test_inprocess_mocks_configured_base_urls(pytester, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/openai/v1")
    make(
        pytester,
        """
import httpx2

@pytest.mark.mockserver(base_url="http://mock.test/v1")
def test_it(mockserver):
    mockserver.add(reply="ok")
    assert ask("x").choices[0].message.content == "ok"  # $OPENAI_BASE_URL
    other = openai.OpenAI(base_url="http://mock.test/v1", max_retries=0)
    other.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    mockserver.add_base_url("http://late.test/api")
    assert httpx2.get("http://late.test/api/models").status_code == 200
    assert mockserver.url == "https://gateway.example/openai/v1"
    assert len(mockserver.calls) == 2
""",
    )
    run(pytester).assert_outcomes(passed=1)


def test_refusing_other_hosts_from_the_ini(pytester):
    pytester.makeini("[pytest]\nmockserver_unmatched_hosts = refuse\n")
    make(
        pytester,
        """
import httpx2

def test_it(mockserver):
    with pytest.raises(httpx2.ConnectError, match="mockserver refused"):
        httpx2.get("http://127.0.0.1:9/")
""",
    )
    run(pytester).assert_outcomes(passed=1)


# -- strictness ---------------------------------------------------------------------------------


def test_unmatched_request_fails_at_teardown_with_the_details(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add("greet", match={"last_user_message": "hi"}, reply="Hello!")
    ask("hi")
    with pytest.raises(openai.NotFoundError):
        ask("something else")
""",
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "mockserver: strict checks failed at teardown",
            "1 request matched no scenario:",
            "  #2 model='gpt-4o-mini' last user message='something else' -> 404",
            "*Closest: 'greet' (test_it.py:*), which failed match.last_user_message*",
            "*assert_all_matched=False*",
            '*README, section "Opting out of strictness"*',
        ]
    )


def test_unused_scenarios_fail_at_teardown_with_their_names(pytester):
    make(
        pytester,
        """
@pytest.mark.mockserver("greetings.yaml")
def test_it(mockserver):
    mockserver.add("never", reply="x")
    mockserver.add("maybe", reply="y", optional=True)
    ask("hi")
""",
        **{"greetings.yaml": GREETINGS},
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "2 scenarios were never used:",
            "  'farewell' (*greetings.yaml:7)",
            "  'never' (test_it.py:*)",
            "*optional: true*assert_all_used=False*",
            '*README, section "Opting out of strictness"*',
        ]
    )
    assert "'maybe'" not in result.stdout.str()


@pytest.mark.parametrize(
    ("opt_out", "args"),
    [
        ("@pytest.mark.mockserver(assert_all_matched=False, assert_all_used=False)", ()),
        ("", ("--mockserver-lenient",)),
        ("", ("-o", "mockserver_assert_all_matched=false", "-o", "mockserver_assert_all_used=0")),
    ],
    ids=["marker", "cli", "ini"],
)
def test_opting_out_of_strictness(pytester, opt_out, args):
    make(
        pytester,
        f"""
{opt_out}
def test_it(mockserver):
    mockserver.add("unused", reply="x", match={{"model": "other"}})
    with pytest.raises(openai.NotFoundError):
        ask("hi")
""",
    )
    run(pytester, *args).assert_outcomes(passed=1)


def test_only_one_check_turned_off(pytester):
    make(
        pytester,
        """
@pytest.mark.mockserver(assert_all_used=False)
def test_it(mockserver):
    mockserver.add("unused", reply="x", match={"model": "other"})
    with pytest.raises(openai.NotFoundError):
        ask("hi")
""",
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    assert "matched no scenario" in result.stdout.str()
    assert "never used" not in result.stdout.str()


def test_a_failing_test_gets_no_extra_teardown_error(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add("unused", reply="x")
    assert False, "the test's own failure"
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "never used" not in result.stdout.str()


def test_server_fixture_is_strict_too(pytester):
    make(
        pytester,
        """
def test_it(mockserver_server):
    mockserver_server.add("unused", reply="x", match={"model": "other"})
""",
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 scenario was never used:*", "  'unused' (test_it.py:*)"])


# -- journal assertions -------------------------------------------------------------------------


def test_request_assertions_print_a_readable_diff(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add(reply="x")
    ask("Tell me a joke about a cat", temperature=0.2, extra_headers={"X-Trace": "t1"})
    call = mockserver.last_call
    assert call.params["temperature"] == 0.2
    assert call.headers["x-trace"] == "t1"
    mockserver.assert_last_request(
        messages=[{"role": "user", "content": "Tell me a joke about a dog"}],
        params={"temperature": 0.2, "top_p": 1},
        headers={"X-Trace": "t2"},
    )
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*mockserver: request #1 model='gpt-4o-mini' *differs from what the test expects:",
            "E*messages:",
            "E*--- expected",
            "E*+++ sent",
            '*-    "content": "Tell me a joke about a dog",',
            '*+    "content": "Tell me a joke about a cat",',
            'E*params: expected {"temperature": 0.2, "top_p": 1}, '
            'sent {"temperature": 0.2, "top_p": "<not sent>"}',
            'E*headers: expected {"x-trace": "t2"}, sent {"x-trace": "t1"}',
        ]
    )
    assert "journal.py" not in result.stdout.str(), "helper frames are hidden"


def test_assert_called_lists_what_was_sent(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add("a", reply="x", match={"last_user_message": "one"})
    mockserver.add("b", reply="y", optional=True)
    ask("one")
    mockserver.assert_called(2, scenario="a")
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*mockserver: expected 2 requests answered by scenario 'a', got 1",
            "E*#1 model='gpt-4o-mini' last user message='one' -> 200 from scenario 'a'",
        ]
    )


def test_scenarios_added_after_requests_keep_the_sequence(pytester):
    make(
        pytester,
        """
def test_it(mockserver):
    mockserver.add("seq", sequence=["one", "two"], match={"last_user_message": "s"})
    assert ask("s").choices[0].message.content == "one"
    mockserver.load_text('''
version: 1
scenarios:
  - name: late
    match: {last_user_message: late}
    reply: {content: late}
''')
    assert ask("late").choices[0].message.content == "late"
    assert ask("s").choices[0].message.content == "two"
    mockserver.reset()
    assert mockserver.calls == []
    assert ask("s").choices[0].message.content == "one"
    assert ask("late").choices[0].message.content == "late"
""",
    )
    run(pytester).assert_outcomes(passed=1)


# -- mistakes -----------------------------------------------------------------------------------


def test_mistakes_are_reported_as_errors_with_the_reason(pytester):
    make(
        pytester,
        """
@pytest.mark.mockserver("missing.yaml")
def test_missing_file(mockserver):
    pass


@pytest.mark.mockserver(sede=1)
def test_unknown_argument(mockserver):
    pass


@pytest.mark.mockserver("broken.yaml")
def test_broken_file(mockserver):
    pass


def test_duplicate_names(mockserver):
    mockserver.add("same", reply="a", optional=True)
    mockserver.add("same", reply="b")
""",
        **{"broken.yaml": "version: 1\nscenarios:\n  - reply: {conten: x}\n"},
    )
    result = run(pytester)
    result.assert_outcomes(errors=3, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*mockserver: @pytest.mark.mockserver: scenario path 'missing.yaml' not found*",
            "mockserver: this test's scenarios do not load:",
            "*got unknown argument(s) sede (allowed: seed, *",
            "*broken.yaml:3: scenarios[[]0].reply.conten: unknown key 'conten'; did you mean*",
            "E*duplicate scenario name 'same' (first used at test_it.py:*)",
        ]
    )


def test_help_lists_the_options(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--mockserver-scenarios-dir=DIR*",
            "*--mockserver-seed=N*",
            "*--mockserver-lenient*",
            "*mockserver_scenarios_dir*",
            "*mockserver_assert_all_used*",
        ]
    )
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.mockserver(*scenario_paths*"])


# -- xdist --------------------------------------------------------------------------------------


def test_xdist_gives_each_worker_its_own_server(pytester):
    make(
        pytester,
        """
import os

@pytest.mark.parametrize("n", range(6))
def test_it(mockserver_server, n, tmp_path_factory):
    mockserver_server.add("seq", sequence=["first", "second"])
    assert ask("x").choices[0].message.content == "first"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = tmp_path_factory.getbasetemp().parent.parent / f"url-{worker}-{n}"
    out.write_text(mockserver_server.url.split("/_mockserver/sessions/")[0])


def test_inprocess_too(mockserver):
    mockserver.add(reply="ok")
    assert ask("x").choices[0].message.content == "ok"
""",
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=7)
    urls: dict[str, set[str]] = {}
    for path in pytester.path.rglob("url-*"):
        worker = path.name.split("-")[1]
        urls.setdefault(worker, set()).add(path.read_text())
    assert sorted(urls) == ["gw0", "gw1"]
    assert all(len(u) == 1 for u in urls.values()), "one server per worker"
    assert urls["gw0"] != urls["gw1"]


def test_adding_built_scenarios_and_files(pytester):
    make(
        pytester,
        """
from mockserver.builder import scenario


def test_it(mockserver):
    built = mockserver.add(scenario("built", match={"last_user_message": "b"}, reply="B"))
    assert built.name == "built"
    with pytest.raises(TypeError, match="no other arguments"):
        mockserver.add(scenario("again", reply="x"), optional=True)
    loaded = mockserver.load("greetings.yaml")
    assert [s.name for s in loaded.scenarios] == ["greet", "farewell"]
    assert ask("b").choices[0].message.content == "B"
    assert ask("hi").choices[0].message.content == "Hello!"
    assert ask("bye").choices[0].message.content == "Goodbye!"
    assert "3 scenarios, 3 requests" in repr(mockserver)
""",
        **{"greetings.yaml": GREETINGS},
    )
    run(pytester).assert_outcomes(passed=1)


def test_the_strict_marker_argument_and_its_deprecated_former_name(pytester):
    make(
        pytester,
        """
@pytest.mark.mockserver(strict=True)
def test_strict(mockserver):
    mockserver.add("any", reply="ok")
    with pytest.raises(openai.BadRequestError, match="frobnicate"):
        ask("hi", extra_body={"frobnicate": 1})
    assert ask("hi").choices[0].message.content == "ok"


@pytest.mark.mockserver(strict_params=True)
def test_former_name(mockserver):
    mockserver.add("any", reply="ok")
    with pytest.raises(openai.BadRequestError, match="frobnicate"):
        ask("hi", extra_body={"frobnicate": 1})
    ask("hi")


def test_lenient_by_default(mockserver):
    mockserver.add("any", reply="ok")
    assert ask("hi", extra_body={"frobnicate": 1}).choices[0].message.content == "ok"
""",
    )
    result = run(pytester, "-W", "default::DeprecationWarning")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*DeprecationWarning*strict_params=...) is now strict=...*"])
