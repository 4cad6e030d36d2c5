"""The control API under /_mockserver/ and sessions, through a real server and plain HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from mockserver.app import create_app
from mockserver.control import MAX_CONTROL_BODY, Admin
from mockserver.engine import MockEngine
from mockserver.scenarios import load_text
from mockserver.server import BackgroundServer

SHARED = """
version: 1
scenarios:
  - name: greet
    match: {last_user_message: {contains: hello}}
    reply: {content: Hi there}
  - name: steps
    match: {last_user_message: {contains: step}}
    sequence:
      - {content: one}
      - {content: two}
      - {content: three}
    after: next
"""
JSON = {"content-type": "application/json"}
ADMIN = {"x-mockserver-admin": "1"}


@dataclass
class Server:
    root: str
    engine: MockEngine
    http: httpx.Client

    def chat(self, text: str, session: str | None = None, **headers: str) -> httpx.Response:
        if session is not None:
            headers["x-mockserver-session"] = session
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
        return self.http.post(f"{self.root}/v1/chat/completions", json=body, headers=headers)

    def content(self, text: str, session: str | None = None) -> str:
        response = self.chat(text, session)
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[tuple[BackgroundServer, httpx.Client]] = []

    def start(text: str = SHARED, **options: object) -> Server:
        engine = MockEngine(load_text(textwrap.dedent(text), "shared.yaml"))
        server = BackgroundServer(create_app(engine, **options)).start()  # type: ignore[arg-type]
        http = httpx.Client(timeout=10)
        started.append((server, http))
        return Server(server.url.removesuffix("/v1"), engine, http)

    yield start
    for server, http in started:
        http.close()
        server.stop()


def post_yaml(
    s: Server, text: str, session: str | None = None, method: str = "POST"
) -> httpx.Response:
    params = {"session": session} if session else {}
    return s.http.request(
        method,
        f"{s.root}/_mockserver/scenarios",
        content=textwrap.dedent(text).encode(),
        params=params,
        headers={**ADMIN, "content-type": "application/yaml"},
    )


EXTRA = """
scenarios:
  - name: weather
    match: {last_user_message: {contains: weather}}
    reply: {content: Sunny}
"""


def test_add_list_replace_and_delete_shared_scenarios(serve):
    s = serve()
    added = post_yaml(s, EXTRA)
    assert added.status_code == 201, added.text
    assert added.json() == {"added": ["weather"], "session": None}
    assert s.content("the weather?") == "Sunny"
    listed = s.http.get(f"{s.root}/_mockserver/scenarios").json()["data"]
    by_name = {d["name"]: d for d in listed}
    assert by_name["weather"]["uses"] == 1
    assert by_name["weather"]["where"] == "POST#1:3"
    assert by_name["greet"]["where"] == "shared.yaml:4"

    replaced = post_yaml(s, EXTRA.replace("Sunny", "Rain"), method="PUT")
    assert replaced.status_code == 201
    assert [d["name"] for d in s.http.get(f"{s.root}/_mockserver/scenarios").json()["data"]] == [
        "weather"
    ]
    assert s.content("the weather?") == "Rain"
    assert s.chat("hello").status_code == 404

    post_yaml(s, "scenarios: [{name: team/hi, reply: {content: x}}, {reply: {content: y}}]")
    slashed = s.http.delete(f"{s.root}/_mockserver/scenarios/team/hi", headers=ADMIN)
    assert slashed.status_code == 200, slashed.text
    unnamed = s.http.delete(f"{s.root}/_mockserver/scenarios/PUT%232%232", headers=ADMIN)
    assert unnamed.status_code == 404  # named after its body: POST#3#2
    slashed = s.http.delete(f"{s.root}/_mockserver/scenarios/POST%233%232", headers=ADMIN)
    assert slashed.status_code == 200, slashed.text
    gone = s.http.delete(f"{s.root}/_mockserver/scenarios/weather", headers=ADMIN)
    assert gone.json() == {"deleted": "weather", "session": None}
    again = s.http.delete(f"{s.root}/_mockserver/scenarios/weather", headers=ADMIN)
    assert again.status_code == 404
    assert "No scenario named 'weather' in the shared scenarios" in again.json()["error"]["message"]


def test_bad_scenarios_are_refused_with_every_problem_and_change_nothing(serve):
    s = serve()
    bad = post_yaml(
        s,
        """
        scenarios:
          - name: broken
            colour: blue
            reply: {content: hi}
          - name: also
            reply: {content: hi, finish: stop}
        """,
    )
    assert bad.status_code == 400
    problems = bad.json()["problems"]
    assert any(p.startswith("POST#1:4: scenarios[0].colour") for p in problems), problems
    assert any("POST#1:7: scenarios[1].reply.finish" in p for p in problems), problems
    syntax = post_yaml(s, "scenarios: [unclosed")
    assert syntax.status_code == 400
    assert "invalid YAML" in syntax.json()["problems"][0]
    dup = post_yaml(s, EXTRA.replace("weather", "greet"))
    assert dup.status_code == 400
    assert "duplicate scenario name 'greet'" in dup.json()["problems"][0]
    assert len(s.engine.scenarios.scenarios) == 2


def test_no_control_request_can_make_the_server_read_a_file(serve):
    s = serve()
    sent = post_yaml(
        s,
        """
        scenarios:
          - name: speak
            reply: {audio: {transcript: hi, file: /etc/hostname}}
        """,
    )
    assert sent.status_code == 400
    assert "cannot name files" in sent.json()["problems"][0]
    assert "POST#1:4: scenarios[0].reply.audio.file" in sent.json()["problems"][0]


def test_limits_aliases_and_unknown_parameters_are_named(serve):
    s = serve()
    big = s.http.post(
        f"{s.root}/_mockserver/scenarios",
        content=b"#" * (MAX_CONTROL_BODY + 1),
        headers=ADMIN,
    )
    assert big.status_code == 413
    assert str(MAX_CONTROL_BODY) in big.json()["error"]["message"]
    bomb = post_yaml(
        s, "a: &a [x, x]\nb: &b [*a, *a]\nscenarios: [{name: z, reply: {content: *b}}]\n"
    )
    assert bomb.status_code == 400
    assert "POST#1:2: YAML aliases" in bomb.json()["problems"][0]
    unknown = s.http.get(f"{s.root}/_mockserver/journal", params={"colour": "x"})
    assert unknown.status_code == 400
    assert "Unknown query parameter 'colour'" in unknown.json()["error"]["message"]
    for key, value in (("limit", "0"), ("status", "abc"), ("since", "nan"), ("unmatched", "1")):
        wrong = s.http.get(f"{s.root}/_mockserver/journal", params={key: value})
        assert wrong.status_code == 400, (key, wrong.text)
        assert wrong.json()["error"]["param"] == key
    name = s.http.get(f"{s.root}/_mockserver/journal", params={"session": "../x"})
    assert name.status_code == 400
    assert "Invalid session name" in name.json()["error"]["message"]
    chat = s.chat("hello", session="a b")
    assert chat.status_code == 400
    assert chat.json()["error"]["code"] == "invalid_session"


def test_journal_filters_shape_and_masked_secrets(serve):
    s = serve()
    s.chat("hello", authorization="Bearer sk-abcdefghijklmnopqrstuvwxyz123456")
    s.chat("step")
    s.chat("nothing like it")
    url = f"{s.root}/_mockserver/journal"
    everything = s.http.get(url).json()["data"]
    assert [e["status"] for e in everything] == [200, 200, 404]
    first = everything[0]
    assert set(first) == {
        "session", "at", "time", "status", "scenario", "where", "reply_index", "reply",
        "request", "headers", "unknown_fields", "error", "miss", "timings", "sent",
        "api", "profile", "fault", "notes",
    }  # fmt: skip
    assert first["headers"]["authorization"] == "Bearer <scrubbed>"
    assert "sk-abcdefghijklmnop" not in json.dumps(everything)
    assert first["scenario"] == "greet"
    assert first["where"] == "shared.yaml:4"
    assert first["reply"]["content"] == ["Hi there"]
    miss = everything[2]["miss"]
    assert miss["closest"] in ("greet", "steps")
    assert miss["condition"] == "match.last_user_message"
    assert miss["reason"]
    assert [
        e["scenario"] for e in s.http.get(url, params={"scenario": "steps"}).json()["data"]
    ] == ["steps"]
    assert len(s.http.get(url, params={"unmatched": "true"}).json()["data"]) == 1
    assert len(s.http.get(url, params={"status": "404"}).json()["data"]) == 1
    assert len(s.http.get(url, params={"limit": "2"}).json()["data"]) == 2
    since = everything[1]["at"]
    assert [e["status"] for e in s.http.get(url, params={"since": since}).json()["data"]] == [404]


def test_verify_passes_and_fails_naming_the_difference(serve):
    s = serve()
    s.content("hello")
    s.content("step")
    url = f"{s.root}/_mockserver/verify"
    good = s.http.post(
        url,
        json={
            "expectations": [
                {"scenario": "greet", "times": 1},
                {"match": {"last_user_message": {"contains": "step"}}, "times": 1},
                {"unmatched": 0},
            ]
        },
    )
    assert good.status_code == 200, good.text
    assert good.json()["ok"] is True
    s.chat("unknown")
    bad = s.http.post(
        url,
        json={
            "expectations": [
                {"scenario": "greet", "times": 2},
                {"match": {"model": "gpt-5"}, "at_least": 1},
                {"unmatched": 0},
                {"all_used": True},
                {"scenario": "steps", "at_most": 3},
            ]
        },
    )
    assert bad.status_code == 409
    body = bad.json()
    assert body["failures"][0] == (
        "expectations[0]: scenario 'greet' answered 1 request; expected exactly 2"
    )
    assert "expectations[1]: 0 requests matched" in body["failures"][1]
    assert "failed match.model" in body["failures"][1]
    assert body["failures"][2].startswith(
        "expectations[2]: 1 request matched no scenario; expected 0"
    )
    assert len(body["failures"]) == 3  # all_used holds (both used), at_most 3 holds
    assert body["message"].startswith("3 of 5 expectations failed:\n- expectations[0]")
    for wrong in (
        {"expectations": [{"scenario": "greet", "tims": 1}]},
        {"expectations": [{"scenario": "nope"}]},
        {"expectations": []},
        {"expect": []},
        {"expectations": [{"match": {"colour": 1}}]},
    ):
        refused = s.http.post(url, json=wrong)
        assert refused.status_code == 400, (wrong, refused.text)
    assert (
        "unknown key 'tims'"
        in s.http.post(url, json={"expectations": [{"scenario": "greet", "tims": 1}]}).json()[
            "error"
        ]["message"]
    )


def test_reset_everything_or_one_session(serve):
    s = serve()
    assert s.content("step", "a") == "one"
    assert s.content("step", "b") == "one"
    assert s.content("step") == "one"
    reset = s.http.post(f"{s.root}/_mockserver/reset", params={"session": "a"}, headers=ADMIN)
    assert reset.json() == {"reset": True, "session": "a"}
    assert s.content("step", "a") == "one"
    assert s.content("step", "b") == "two"
    s.http.post(f"{s.root}/_mockserver/reset", headers=JSON, content=b"{}")
    assert s.content("step", "b") == "one"
    assert s.content("step") == "one"
    assert s.http.get(f"{s.root}/_mockserver/reset").status_code in (404, 405)


def test_sessions_get_their_own_scenarios_on_top_of_the_shared_ones(serve):
    s = serve()
    assert post_yaml(s, EXTRA, session="mine").status_code == 201
    assert s.content("weather", "mine") == "Sunny"
    assert s.chat("weather").status_code == 404  # not shared
    assert s.chat("weather", "other").status_code == 404
    assert s.content("hello", "mine") == "Hi there"
    # the base URL form, for clients that cannot add headers
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "weather"}]}
    via_path = s.http.post(f"{s.root}/_mockserver/sessions/mine/v1/chat/completions", json=body)
    assert via_path.json()["choices"][0]["message"]["content"] == "Sunny"
    last = s.http.get(f"{s.root}/_mockserver/journal", params={"session": "mine"}).json()
    assert "x-mockserver-session" not in last["data"][-1]["headers"]  # nothing made up
    both = s.http.post(
        f"{s.root}/_mockserver/sessions/mine/v1/chat/completions",
        json=body,
        headers={"x-mockserver-session": "other"},
    )
    assert both.json()["choices"][0]["message"]["content"] == "Sunny"  # the path wins
    listed = s.http.get(f"{s.root}/_mockserver/scenarios", params={"session": "mine"}).json()
    assert {d["name"]: d["session"] for d in listed["data"]} == {
        "greet": None,
        "steps": None,
        "weather": "mine",
    }
    # a shared name a session uses is refused; the shared set changing rebuilds the session
    assert post_yaml(s, EXTRA).status_code == 400
    post_yaml(s, EXTRA.replace("weather", "rain"))
    assert s.content("rain", "mine") == "Sunny"
    assert s.content("weather", "mine") == "Sunny"
    journal = s.http.get(f"{s.root}/_mockserver/journal", params={"session": "mine"}).json()
    assert len(journal["data"]) == 6
    deleted = s.http.delete(
        f"{s.root}/_mockserver/scenarios/weather", params={"session": "mine"}, headers=ADMIN
    )
    assert deleted.status_code == 200
    assert s.chat("weather", "mine").status_code == 404
    names = s.http.get(f"{s.root}/_mockserver/sessions").json()["data"]
    assert {n["name"] for n in names} == {"mine", "other"}


def test_two_sessions_run_one_sequence_concurrently_without_interfering(serve):
    s = serve()
    seen: dict[str, list[object]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def run(session: str) -> None:
        barrier.wait()
        with httpx.Client(timeout=10) as http:
            for i in range(100):
                body = {"model": "m", "messages": [{"role": "user", "content": f"step {i}"}]}
                reply = http.post(
                    f"{s.root}/v1/chat/completions",
                    json=body,
                    headers={"x-mockserver-session": session},
                )
                ok = reply.status_code == 200
                seen[session].append(
                    reply.json()["choices"][0]["message"]["content"] if ok else reply.status_code
                )

    threads = [threading.Thread(target=run, args=(n,)) for n in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # `after: next` gives one, two, three, then falls through to nothing: each session in order
    for session, replies in seen.items():
        assert replies == ["one", "two", "three", *[404] * 97], session
        journal = s.http.get(f"{s.root}/_mockserver/journal", params={"session": session})
        data = journal.json()["data"]
        assert len(data) == 100
        assert [e["request"]["messages"][0]["content"] for e in data] == [
            f"step {i}" for i in range(100)
        ]
    assert s.content("step") == "one"  # requests without a session are unaffected
    assert len(s.engine.journal) == 1


def test_sessions_are_bounded_least_recently_used_dropped(serve):
    s = serve(max_sessions=2)
    assert s.content("step", "a") == "one"
    assert s.content("step", "b") == "one"
    assert s.content("step", "a") == "two"  # a is now the most recent
    assert s.content("step", "c") == "one"  # drops b
    names = [n["name"] for n in s.http.get(f"{s.root}/_mockserver/sessions").json()["data"]]
    assert names == ["c", "a"]
    assert s.content("step", "b") == "one"  # b starts over
    assert s.content("step", "a") == "one"  # ...which dropped a


def test_the_guard_off_token_and_json_rules(serve):
    off = serve(admin=Admin(enabled=False))
    refused = off.http.get(f"{off.root}/_mockserver/journal")
    assert refused.status_code == 403
    assert "--no-admin" in refused.json()["error"]["message"]
    assert off.http.get(f"{off.root}/_mockserver/").status_code == 403
    assert off.content("hello") == "Hi there"  # the API itself still serves

    locked = serve(admin=Admin(token="s3cret"))
    assert locked.http.get(f"{locked.root}/_mockserver/journal").status_code == 401
    auth = {"authorization": "Bearer s3cret"}
    assert locked.http.get(f"{locked.root}/_mockserver/journal", headers=auth).status_code == 200
    assert locked.http.get(f"{locked.root}/_mockserver/").status_code == 200  # asks for it
    form = locked.http.post(
        f"{locked.root}/_mockserver/reset",
        headers={**auth, "content-type": "text/plain"},
        content=b"x",
    )
    assert form.status_code == 403
    assert form.json()["error"]["code"] == "admin_request_not_json"


def test_openapi_and_page_assets_are_served_from_the_package(serve):
    s = serve()
    spec = s.http.get(f"{s.root}/_mockserver/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/_mockserver/scenarios", "/_mockserver/journal", "/_mockserver/verify"):
        assert path in spec["paths"]
    post = spec["paths"]["/_mockserver/scenarios"]["post"]
    assert "source" in [p["name"] for p in post["parameters"]]
    bundle = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert bundle["required"] == ["document"]
    page = s.http.get(f"{s.root}/_mockserver/")
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN
    assert s.http.get(f"{s.root}/_mockserver/page/app.js").status_code == 200
    missing = s.http.get(f"{s.root}/_mockserver/page/..%2Fengine.py")
    assert missing.status_code == 404


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_adds_a_scenario_and_verifies_from_a_shell(serve, tmp_path):
    s = serve()
    script = tmp_path / "check.sh"
    script.write_text(
        textwrap.dedent(
            """\
            set -eu
            curl -sf -X POST "$ROOT/_mockserver/scenarios?session=sh" \\
                 -H 'x-mockserver-admin: 1' --data-binary @- <<'EOF'
            scenarios:
              - name: shell
                reply: {content: from the shell}
            EOF
            curl -sf "$ROOT/v1/chat/completions" -H 'x-mockserver-session: sh' \\
                 -H 'content-type: application/json' \\
                 -d '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
            curl -s -o /dev/null -w '%{http_code}\\n' "$ROOT/_mockserver/verify?session=sh" \\
                 -H 'content-type: application/json' \\
                 -d '{"expectations": [{"scenario": "shell", "times": 1}]}'
            curl -s -o /dev/null -w '%{http_code}\\n' "$ROOT/_mockserver/verify?session=sh" \\
                 -H 'content-type: application/json' \\
                 -d '{"expectations": [{"scenario": "shell", "times": 2}]}'
            """
        )
    )
    done = subprocess.run(
        ["bash", str(script)],
        env={"ROOT": s.root, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "from the shell" in done.stdout
    assert done.stdout.rstrip().endswith("200\n409")


def test_cli_flags_no_admin_and_max_sessions(capsys):
    from mockserver.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "scenarios", "--max-sessions", "0"])
    assert "--max-sessions: expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_cli_serves_with_no_admin_and_a_session_limit(tmp_path):
    import sys

    from tests.test_cli import ROOT

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver",
            "serve",
            "scenarios",
            "--port",
            "0",
            "--no-admin",
            "--max-sessions",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split("listening on ")[1].split()[0]
        root = url.removesuffix("/v1")
        with httpx.Client(timeout=10) as http:
            assert http.get(f"{root}/_mockserver/journal").status_code == 403
            assert http.get(f"{root}/_mockserver/").status_code == 403
            body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
            for session in ("a", "b"):
                reply = http.post(
                    f"{url}/chat/completions", json=body, headers={"x-mockserver-session": session}
                )
                assert reply.status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_a_session_holds_a_bounded_amount_of_scenarios(serve, monkeypatch):
    from mockserver import sessions

    monkeypatch.setattr(sessions, "MAX_SESSION_SCENARIO_BYTES", 300)
    s = serve()
    assert post_yaml(s, EXTRA, session="big").status_code == 201
    assert post_yaml(s, EXTRA.replace("weather", "w2"), session="big").status_code == 201
    refused = post_yaml(s, EXTRA.replace("weather", "w3"), session="big")
    assert refused.status_code == 413
    assert "more than the 300 bytes a session may hold" in refused.json()["error"]["message"]
    assert post_yaml(s, EXTRA * 3, session="big", method="PUT").status_code == 400  # dup names
    too_big = post_yaml(s, EXTRA + "\n#" + "x" * 400, session="big", method="PUT")
    assert too_big.status_code == 413


def test_sessions_unit_pinned_engines_and_giving_way_to_the_shared_set():
    from mockserver.errors import ApiError
    from mockserver.sessions import Sessions, split_session_path

    shared = MockEngine(load_text(SHARED, "shared.yaml"))
    sessions = Sessions(shared, limit=3)
    own = load_text(EXTRA, "own.yaml")
    sessions.add("s", own, 10)
    engine = sessions.engine("s")
    assert [x.name for x in engine.scenarios.scenarios] == ["weather", "greet", "steps"]
    # the shared set now has a `weather` too: the session's own gives way, positions kept
    engine.handle_chat(b'{"model":"m","messages":[{"role":"user","content":"step"}]}')
    shared.replace_scenarios(shared.scenarios.extend(load_text(EXTRA, "later.yaml").scenarios))
    rebuilt = sessions.engine("s")
    assert [x.where for x in rebuilt.scenarios.scenarios if x.name == "weather"] == ["later.yaml:3"]
    assert rebuilt.uses()["steps"] == 1
    assert len(rebuilt.journal) == 1
    pinned = MockEngine(own)
    sessions.install("t", pinned)
    assert sessions.engine("t") is pinned
    with pytest.raises(ApiError, match="running pytest test"):
        sessions.replace("t", own, 1)
    sessions.drop("t")
    assert sessions.find("t") is None
    assert split_session_path("/_mockserver/sessions/x/health") is None
    assert split_session_path("/_mockserver/sessions//v1/chat/completions") is None
    assert split_session_path("/_mockserver/sessions/x/v1/models") == ("x", "/v1/models")
    with pytest.raises(ValueError, match="at least 1"):
        Sessions(shared, limit=0)


def test_verify_counts_bounds_and_refusals_unit():
    from mockserver.errors import ApiError
    from mockserver.verify import check_expectations

    engine = MockEngine(load_text(SHARED, "shared.yaml"))
    hello = b'{"model":"m","messages":[{"role":"user","content":"hello"}]}'
    engine.handle_chat(hello)
    engine.handle_chat(hello)

    def failures(*items):
        return check_expectations(list(items), engine)[0]

    assert failures({"scenario": "greet", "at_least": 2, "at_most": 3}) == []
    assert failures({"scenario": "greet", "at_most": 1}) == [
        "expectations[0]: scenario 'greet' answered 2 requests; expected at most 1"
    ]
    assert failures({"scenario": "greet", "at_least": 3, "at_most": 4}) == [
        "expectations[0]: scenario 'greet' answered 2 requests; expected between 3 and 4"
    ]
    assert failures({"all_used": True}) == [
        "expectations[0]: 1 scenarios never answered a request: 'steps' (shared.yaml:7)"
    ]
    assert failures({"match": {"model": "m"}, "times": 2}) == []
    empty = MockEngine(load_text(SHARED, "shared.yaml"))
    assert check_expectations([{"match": {"model": "m"}}], empty)[0] == [
        "expectations[0]: 0 requests matched {'model': 'm'}; expected at least 1; "
        "the journal holds no valid request"
    ]
    for wrong, says in (
        ([{"scenario": "greet", "times": 1, "at_most": 2}], "not both"),
        ([{"scenario": "greet", "times": True}], "expected a count"),
        ([{"scenario": "greet", "times": -1}], "expected a count"),
        (["greet"], "expected a mapping"),
        ([{"scenario": "greet", "unmatched": 0}], "exactly one of"),
        ([{"all_used": False}], "the only value is true"),
        ([{"unmatched": 0}] * 101, "more than the 100 allowed"),
        ({"expectations": [{"unmatched": 0}], "strict": True}, "Unknown field 'strict'"),
    ):
        with pytest.raises(ApiError, match=says):
            check_expectations(wrong, engine)


def test_long_strings_in_a_journaled_body_are_shown_cut():
    """A base64 image of megabytes is shown as its first 64 KiB and how much was left out (it
    was scrubbed for secrets whole, which took over a second for 20 MB)."""
    import json as _json

    from mockserver import journal_view
    from mockserver.engine import MockEngine
    from mockserver.scenarios import load_text

    engine = MockEngine(load_text("scenarios:\n  - reply: {content: x}\n"))
    url = "data:image/png;base64," + "A" * 200_000
    part = {"type": "image_url", "image_url": {"url": url}}
    message = {"role": "user", "content": [{"type": "text", "text": "look"}, part]}
    engine.handle_chat(_json.dumps({"model": "m", "messages": [message]}).encode())
    shown = _json.loads(journal_view.encoded([(None, engine)], journal_view.Query(), 0, 1))
    kept = shown["data"][0]["request"]["messages"][0]["content"][1]["image_url"]["url"]
    assert (
        kept
        == url[: journal_view.SHOWN_STRING]
        + f"...[{len(url) - journal_view.SHOWN_STRING} more characters]"
    )
    assert shown["data"][0]["request"]["messages"][0]["content"][0]["text"] == "look"


TIMED = """
version: 1
scenarios:
  - name: slow
    match: {last_user_message: {contains: slow}}
    reply: {content: late, delay_ms: 300}
  - name: paced
    match: {last_user_message: {contains: paced}}
    reply:
      content: a b c d e
      stream: {first_chunk_delay_ms: 100, chunk_delay_ms: 50, chunk_size: 2}
"""


def test_journal_timings_are_measured_at_the_wire(serve):
    """A scripted delay and a paced stream show measured durations (not the script's
    numbers copied): first byte and last byte from the request's arrival."""
    s = serve(TIMED)
    assert s.content("slow") == "late"
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "paced"}]}
    with s.http.stream("POST", f"{s.root}/v1/chat/completions", json=body) as response:
        frames = list(response.iter_lines())
    assert "data: [DONE]" in frames
    slow, paced = s.http.get(f"{s.root}/_mockserver/journal").json()["data"]
    timing = slow["timings"]
    assert set(timing) == {
        "received_at", "answered_at", "delay_ms", "first_byte_ms", "total_ms", "client_gone",
    }  # fmt: skip
    assert timing["delay_ms"] == 300
    assert 300 <= timing["first_byte_ms"] <= timing["total_ms"] < 1000
    assert timing["received_at"] <= timing["answered_at"]
    assert timing["client_gone"] is False
    chunks = len(paced["sent"]["frames"])
    assert chunks >= 7  # role, five words, finish, usage/[DONE]
    streamed = paced["timings"]
    # the first chunk waits 100 ms; every later one 50 ms more
    assert 100 <= streamed["first_byte_ms"] < 400
    expected = 100 + 50 * (chunks - 1)
    assert expected <= streamed["total_ms"] < expected + 400
    assert paced["sent"]["body"] is None
    assert "".join(f["data"] for f in paced["sent"]["frames"]).endswith("data: [DONE]\n\n")
    assert paced["sent"]["frames"][1]["delay_ms"] == 50


def test_journal_keeps_the_reply_as_sent_cut_to_its_limit(serve):
    from mockserver.journal import SHOWN_REPLY

    long = "word " * 20_000  # 100 KB of content
    s = serve(f"version: 1\nscenarios:\n  - reply: {{content: {long.strip()}}}\n")
    response = s.chat("hello")
    entry = s.http.get(f"{s.root}/_mockserver/journal").json()["data"][0]
    sent = entry["sent"]
    assert sent["status"] == 200
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["content-length"] == str(len(response.content))
    assert sent["bytes"] == len(response.content)
    assert sent["body"] == response.content[:SHOWN_REPLY].decode()
    assert sent["cut_bytes"] == len(response.content) - SHOWN_REPLY
    assert str(SHOWN_REPLY) in sent["note"]
    assert sent["frames"] is None
    small = "version: 1\nscenarios:\n  - {name: small, priority: 1, reply: {content: x}}\n"
    assert post_yaml(s, small, session="a").status_code == 201
    s.chat("hello", session="a")
    small = s.http.get(f"{s.root}/_mockserver/journal", params={"session": "a"}).json()["data"]
    assert small[0]["sent"]["cut_bytes"] == 0
    assert small[0]["sent"]["note"] is None


def test_a_client_leaving_a_stream_is_measured_and_its_frames_cut_there(serve):
    s = serve(TIMED.replace("chunk_delay_ms: 50", "chunk_delay_ms: 400"))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "paced"}]}
    with s.http.stream("POST", f"{s.root}/v1/chat/completions", json=body) as response:
        next(response.iter_bytes())  # the first chunk, then hang up
    url = f"{s.root}/_mockserver/journal"
    deadline = time.monotonic() + 5
    while (entry := s.http.get(url).json()["data"][0])["timings"]["total_ms"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert entry["timings"]["client_gone"] is True
    assert entry["timings"]["total_ms"] < 2000  # not the 7 chunks x 400 ms of the script
    assert 1 <= len(entry["sent"]["frames"]) < 4


def test_kept_replies_count_toward_the_journal_byte_budget():
    """A reply the server sent is charged to the journal: with a small budget the oldest
    entries go, and the bytes counted stay within it."""
    from mockserver.engine import JournalEntry
    from mockserver.journal import Journal, Meter, cost
    from mockserver.outcome import Outcome

    journal = Journal(100, 10_000)
    meters = []
    for _ in range(10):
        meter = Meter(0.0, 0.0)
        journal.add(JournalEntry(raw=b"x" * 100, headers=(), status=200, meter=meter))
        assert journal.size <= journal.budget  # the replies sent before counted, oldest gone
        meter.sent(Outcome(200, [], body=b"y" * 2000), [], None, 1.0, 1.0)
        meters.append(meter)
    journal.add(JournalEntry(raw=b"", headers=(), status=200))  # counts the last reply
    assert journal.size <= journal.budget
    assert len(journal) < 11 and journal.dropped == 11 - len(journal)
    kept = sum(cost(e.raw, e.headers) + (e.meter.kept if e.meter else 0) for e in journal._items)
    assert journal.size == kept
    assert meters[0].charges is None and meters[0].shown is None  # dropped with its entry
    assert meters[-1].charges is journal.charges and meters[-1].shown == b"y" * 2000
    assert meters[-1].kept > 2000
    # an entry dropped before its reply was sent keeps no reply
    late = Meter(0.0, 0.0)
    journal.add(JournalEntry(raw=b"", headers=(), status=200, meter=late))
    for _ in range(12):
        journal.add(JournalEntry(raw=b"f" * 1000, headers=(), status=200))
    late.sent(Outcome(200, [], body=b"z"), [], None, 1.0, 1.0)
    assert late.shown is None and late.charges is None


SPOKEN = """
version: 1
scenarios:
  - name: speak
    reply: {audio: {transcript: hi, file: voice/hello.mp3}}
"""


def _bundle(document: str, files: dict[str, bytes]) -> dict[str, object]:
    import base64

    return {
        "document": document,
        "files": {n: base64.b64encode(d).decode() for n, d in files.items()},
    }


def test_a_bundle_brings_the_audio_its_scenarios_name(serve):
    import base64

    s = serve()
    url = f"{s.root}/_mockserver/scenarios"
    sound = b"ID3 not really an mp3 but bytes all the same"
    added = s.http.post(
        url,
        json=_bundle(SPOKEN, {"voice/hello.mp3": sound}),
        params={"session": "a", "source": "tests/test_voice.py:7"},
    )
    assert added.status_code == 201, added.text
    listed = s.http.get(url, params={"session": "a"}).json()["data"]
    assert [e["where"] for e in listed if e["name"] == "speak"] == ["tests/test_voice.py:7:4"]
    body = {
        "model": "gpt-4o-audio-preview",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "mp3"},
        "messages": [{"role": "user", "content": "say it"}],
    }
    spoken = s.http.post(
        f"{s.root}/v1/chat/completions", json=body, headers={"x-mockserver-session": "a"}
    ).json()["choices"][0]["message"]["audio"]
    assert base64.b64decode(spoken["data"]) == sound
    assert s.engine.scenarios.scenarios[0].name == "greet"  # nothing reached the shared set


def test_bundle_refusals_name_the_key_and_the_limit(serve, monkeypatch):
    from mockserver import control

    s = serve()
    url = f"{s.root}/_mockserver/scenarios"

    def post(value: object, **params: str) -> httpx.Response:
        return s.http.post(url, json=value, params={"session": "b", **params})

    missing = post(_bundle(SPOKEN, {"other.mp3": b"x"}))
    assert missing.status_code == 400
    assert "the bundle has 'other.mp3'" in missing.json()["problems"][0]
    assert "POST#1:5: scenarios[0].reply.audio.file" in missing.json()["problems"][0]
    bad = post({"document": SPOKEN, "files": {"voice/hello.mp3": "not base64!"}})
    assert bad.status_code == 400 and "not valid base64" in bad.json()["error"]["message"]
    unknown = post({"document": SPOKEN, "extra": 1})
    assert unknown.json()["error"]["code"] == "unknown_field"
    assert post({"document": 3}).json()["error"]["param"] == "document"
    assert post({"document": SPOKEN, "files": []}).json()["error"]["param"] == "files"
    assert post({"document": SPOKEN, "files": {"a": 1}}).status_code == 400
    assert post({"document": "scenarios: []"}, source="x" * 201).json()["error"]["param"] == (
        "source"
    )
    monkeypatch.setattr(control, "MAX_BUNDLE_AUDIO", 10)
    big = post(_bundle(SPOKEN, {"voice/hello.mp3": b"x" * 11}))
    assert big.status_code == 413
    assert "10 bytes of audio" in big.json()["error"]["message"]
    assert "MAX_BUNDLE_AUDIO" in big.json()["error"]["message"]
    monkeypatch.setattr(control, "MAX_BUNDLE_BODY", 100)
    huge = post(_bundle(SPOKEN, {"voice/hello.mp3": b"x" * 200}))
    assert huge.status_code == 413 and "MAX_BUNDLE_BODY" in huge.json()["error"]["message"]
    # a JSON scenario file (not a bundle) keeps the control body limit
    monkeypatch.setattr(control, "MAX_BUNDLE_BODY", 10 * MAX_CONTROL_BODY)
    wide = {"scenarios": [{"name": "x" * 10, "reply": {"content": "y" * MAX_CONTROL_BODY}}]}
    refused = post(wide)
    assert refused.status_code == 413
    assert f"{MAX_CONTROL_BODY} bytes a /_mockserver/ control request" in refused.text


def test_a_dropped_stream_journals_exactly_the_bytes_the_client_got(serve):
    s = serve(TIMED.replace("chunk_delay_ms: 50, chunk_size: 2}", "interrupt: {after_chunks: 3}}"))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "paced"}]}
    got = bytearray()

    def read() -> None:
        with s.http.stream("POST", f"{s.root}/v1/chat/completions", json=body) as response:
            for chunk in response.iter_raw():
                got.extend(chunk)

    with pytest.raises(httpx.RemoteProtocolError):
        read()
    entry = s.http.get(f"{s.root}/_mockserver/journal").json()["data"][0]
    frames = entry["sent"]["frames"]
    assert got.count(b"data: ") == 3  # the three chunks the script sends before the drop
    assert "".join(f["data"] for f in frames).encode() == got
    assert entry["sent"]["bytes"] == len(got)
    assert entry["timings"]["total_ms"] >= 100  # the first chunk's scripted wait


def test_a_long_stream_is_kept_cut_at_the_limit_with_its_whole_size():
    from mockserver.engine import JournalEntry
    from mockserver.journal import SHOWN_REPLY, Journal, Meter
    from mockserver.outcome import Frame, Outcome

    journal = Journal(10, 10 * SHOWN_REPLY)
    meter = Meter(0.0, 0.0)
    journal.add(JournalEntry(raw=b"", headers=(), status=200, meter=meter))
    frames = [Frame(0.01, b"x" * 10_000) for _ in range(10)]
    meter.sent(Outcome(200, [], frames=frames), [], 9, 0.5, 1.0)  # the last one never sent
    assert isinstance(meter.shown, tuple)
    assert sum(len(f.data) for f in meter.shown) == SHOWN_REPLY
    assert len(meter.shown) == 7 and len(meter.shown[-1].data) == SHOWN_REPLY - 60_000
    assert meter.size == 90_000
    journal.add(JournalEntry(raw=b"", headers=(), status=200))  # counts the reply
    assert SHOWN_REPLY < journal.size < 2 * SHOWN_REPLY


def test_in_process_replies_are_measured_as_the_client_reads_them():
    """In process there is no socket: a reply is sent when the client library gets it, a
    stream as the client reads its frames (and a client closing it early is seen)."""
    import json as _json

    from mockserver import journal_view
    from mockserver.inprocess import DEFAULT_BASE_URL, InProcessMock

    engine = MockEngine(load_text(textwrap.dedent(TIMED)))
    url = f"{DEFAULT_BASE_URL}/chat/completions"

    def ask(text: str, **extra: object) -> dict[str, object]:
        return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}

    with InProcessMock(engine), httpx.Client() as http:
        assert http.post(url, json=ask("slow")).json()["choices"][0]["message"]["content"]
        with http.stream("POST", url, json=ask("paced", stream=True)) as response:
            whole = response.read()
        with http.stream("POST", url, json=ask("paced", stream=True)) as response:
            next(response.iter_raw())  # the first chunk, then close
    shown = _json.loads(journal_view.encoded([(None, engine)], journal_view.Query(), 0, 1))
    slow, paced, left = shown["data"]
    assert 300 <= slow["timings"]["first_byte_ms"] <= slow["timings"]["total_ms"] < 1000
    assert slow["sent"]["body"].startswith('{"id":"chatcmpl-')
    assert 100 <= paced["timings"]["first_byte_ms"] < paced["timings"]["total_ms"]
    assert "".join(f["data"] for f in paced["sent"]["frames"]).encode() == whole
    assert paced["timings"]["client_gone"] is False
    assert left["timings"]["client_gone"] is True
    assert left["sent"]["bytes"] < len(whole)


def test_a_journal_let_go_is_freed_without_the_garbage_collector():
    """Entries and their meters hold no reference back to the journal: resetting an engine
    frees its journal at once, as before meters existed."""
    import gc
    import weakref

    from mockserver.engine import JournalEntry
    from mockserver.journal import Journal, Meter
    from mockserver.outcome import Outcome

    journal = Journal(10, 10_000)
    meter = Meter(0.0, 0.0)
    journal.add(JournalEntry(raw=b"", headers=(), status=200, meter=meter))
    meter.sent(Outcome(200, [], body=b"x"), [], None, 1.0, 1.0)
    journal.add(JournalEntry(raw=b"", headers=(), status=200))  # counts the reply
    gone = weakref.ref(journal)
    gc.disable()
    try:
        del journal
        assert gone() is None
    finally:
        gc.enable()
