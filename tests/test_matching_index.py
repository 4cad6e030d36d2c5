"""The indexed search chooses exactly what a plain linear scan chooses, and regexes cannot stall.

Random scenario sets (equalities, needles, regexes, globs, priorities, `messages`, params) and
random requests go through `Matcher.find` and through a reference scan that tests every
scenario in precedence order with `why_not`; both must pick the same scenario (hypothesis).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.matching import Matcher
from mockserver.normal import normal_key
from mockserver.scenarios import load_text
from mockserver.validation import parse_chat_request

TEXTS = ["alpha", "alpha beta", "beta gamma", "ab", "bd x", "gamma", "", "x alpha ab", "été ab"]
NEEDLES = ["alpha", "beta", "a", "ab", "ta g", "x", "", "é"]
REGEXES = ["^alpha", "beta$", "a.b", "(ab|bd)", "^$", "g+a", "(a+)+$", "^.t"]
MODELS = ["gpt-4o-mini", "gpt-4o", "o3"]
CONVERSATIONS = [
    [{"role": "user", "content": "alpha"}],
    [{"role": "system", "content": "beta"}, {"role": "user", "content": "alpha"}],
    [
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": [{"type": "text", "text": "gamma"}]},
    ],
]

text_test = st.one_of(
    st.sampled_from(TEXTS),
    st.fixed_dictionaries(
        {},
        optional={
            "equals": st.sampled_from(TEXTS),
            "contains": st.lists(st.sampled_from(NEEDLES), max_size=2),
            "regex": st.sampled_from(REGEXES),
        },
    ).filter(bool),
)
match = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([*MODELS, "gpt-4o*", "*"]),
        "stream": st.booleans(),
        "last_user_message": text_test,
        "system_message": text_test,
        "any_message": text_test,
        "messages": st.sampled_from(CONVERSATIONS),
        "params": st.sampled_from([{"temperature": 0}, {"temperature": 1.0}, {"n": 1}]),
    },
)
scenario_sets = st.lists(st.tuples(st.integers(0, 2), match), min_size=1, max_size=12)
requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "messages": st.one_of(
            st.sampled_from(CONVERSATIONS),
            st.lists(
                st.tuples(st.sampled_from(["user", "system", "assistant"]), st.sampled_from(TEXTS)),
                min_size=1,
                max_size=4,
            ).map(lambda ms: [{"role": r, "content": t} for r, t in ms]),
        ),
    },
    optional={"stream": st.booleans(), "temperature": st.sampled_from([0, 0.0, 1, 0.5])},
)


def load(scenarios: list[tuple[int, dict]]):
    document = {
        "scenarios": [
            {"name": f"s{i}", "priority": priority, "match": m, "reply": {"content": "x"}}
            for i, (priority, m) in enumerate(scenarios)
        ]
    }
    return load_text(json.dumps(document), "random.yaml").scenarios


def linear(scenarios, request, skip: frozenset[int]) -> int | None:
    """The reference: every scenario in precedence order, each condition asked `why_not`."""
    order = sorted(range(len(scenarios)), key=lambda i: (-scenarios[i].priority, i))
    for position in order:
        if position in skip:
            continue
        if all(c.why_not(request) is None for c in scenarios[position].conditions):
            return position
    return None


def reference_explain(scenarios, request) -> tuple[int | None, str | None, str | None]:
    """The closest miss as first written: every condition of every scenario asked `why_not`."""
    order = sorted(range(len(scenarios)), key=lambda i: (-scenarios[i].priority, i))
    best, found = None, (None, None, None)
    for position in order:
        conditions = scenarios[position].conditions
        reasons = [(c.key, c.why_not(request)) for c in conditions]
        failed = [(k, r) for k, r in reasons if r is not None]
        score = (len(conditions) - len(failed), -len(conditions))
        if best is None or score > best:
            best, found = score, (position, *(failed[0] if failed else (None, None)))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_sets, st.lists(requests, min_size=1, max_size=4), st.sets(st.integers(0, 11)))
def test_indexed_search_picks_what_a_linear_scan_picks(scenario_set, bodies, skip):
    scenarios = load(scenario_set)
    matcher = Matcher(scenarios)
    for body in bodies:
        request = parse_chat_request(body)
        for scenario in scenarios:
            for condition in scenario.conditions:
                assert condition.holds(request) == (condition.why_not(request) is None)
        expected = linear(scenarios, request, frozenset(skip))
        assert matcher.find(request, skip.__contains__) == expected
        assert matcher.find(request) == linear(scenarios, request, frozenset())
        miss = matcher.explain(request)
        assert (miss.scenario, miss.condition, miss.reason) == reference_explain(scenarios, request)


def test_many_scenarios_one_index_lookup_each():
    rows = [
        {"name": f"c{i}", "match": {"last_user_message": {"contains": f"topic {i:05d}"}}}
        for i in range(3000)
    ]
    rows += [
        {"name": f"r{i}", "match": {"system_message": {"regex": f"^rule {i}$"}}} for i in range(300)
    ]
    for row in rows:
        row["reply"] = {"content": row["name"]}
    scenarios = load_text(json.dumps({"scenarios": rows}), "big.yaml").scenarios
    matcher = Matcher(scenarios)
    names = [s.name for s in scenarios]
    ask = lambda text, system="s": parse_chat_request(  # noqa: E731
        {
            "model": "m",
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
        }
    )
    assert names[matcher.find(ask("tell me about topic 02999 please"))] == "c2999"
    assert names[matcher.find(ask("nothing here", "rule 299"))] == "r299"
    assert matcher.find(ask("topic 3000")) is None
    assert matcher._candidates(ask("topic 01234")) == [1234]  # one candidate, not 3,300


def test_normal_key_equal_exactly_when_normal_forms_are():
    assert normal_key([{"a": 1.0, "b": None}]) == normal_key([{"a": 1}])
    assert normal_key([{"a": 1}]) != normal_key([{"a": True}])
    assert normal_key({"x": 1, "y": 2}) == normal_key({"y": 2, "x": 1})
    assert normal_key({"content": [{"type": "text", "text": "hi"}]}) == normal_key(
        {"content": "hi"}
    )
    assert normal_key([{"a": 1.5}]) != normal_key([{"a": 1}])


def test_regex_that_re2_cannot_read_falls_back_with_a_warning(caplog):
    text = 'scenarios:\n  - name: back\n    match: {last_user_message: {regex: "(a)\\\\1"}}\n    reply: {content: x}\n'
    with caplog.at_level("WARNING", logger="mockserver"):
        scenarios = load_text(text, "b.yaml").scenarios
    assert "b.yaml:3: scenarios[0].match.last_user_message.regex" in caplog.text
    assert "Python's re" in caplog.text
    matcher = Matcher(scenarios)
    hit = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "xaa"}]})
    assert matcher.find(hit) == 0


def test_a_backtracking_regex_does_not_stall_other_requests(live):
    """`(a+)+$` against 30 `a`s and a `b` takes Python's re minutes; RE2 answers at once."""
    server = live(
        """
        scenarios:
          - name: bomb
            match: {last_user_message: {regex: "(a+)+$"}}
            reply: {content: never}
          - name: simple
            match: {last_user_message: hello}
            reply: {content: hi}
        """
    )
    url = server.url + "/chat/completions"
    bomb = {"model": "m", "messages": [{"role": "user", "content": "a" * 30 + "b"}]}
    results: dict[str, float] = {}

    def send_bomb() -> None:
        started = time.perf_counter()
        response = httpx.post(url, json=bomb, timeout=30)
        results["bomb"] = time.perf_counter() - started
        results["bomb_status"] = response.status_code

    thread = threading.Thread(target=send_bomb)
    thread.start()
    started = time.perf_counter()
    response = httpx.post(
        url, json={"model": "m", "messages": [{"role": "user", "content": "hello"}]}, timeout=30
    )
    simple = time.perf_counter() - started
    thread.join(30)
    assert response.json()["choices"][0]["message"]["content"] == "hi"
    assert results["bomb_status"] == 404  # no match: the pattern needs the text to end in a's
    assert simple < 0.5
    assert results["bomb"] < 0.5


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("caf.", "un café", True),
        (r"^\d+$", "123", True),
        ("(?i)HELLO", "hello", True),
        ("x{2}", "x", False),
    ],
)
def test_re2_reads_the_usual_syntax(pattern, text, matches):
    yaml = json.dumps(
        {
            "scenarios": [
                {
                    "name": "r",
                    "match": {"last_user_message": {"regex": pattern}},
                    "reply": {"content": "x"},
                }
            ]
        }
    )
    matcher = Matcher(load_text(yaml, "r.yaml").scenarios)
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": text}]})
    assert (matcher.find(request) == 0) is matches


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 1.0, -0.0, 1.5, 1e20, 2.5e-3])
    | st.sampled_from(["", "a", ":null", '"content":[', "1.0,", "x", "text", "type"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["content", "type", "text", "a", "b"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_normal_key_shortcut_gives_the_key_of_the_normal_form(value):
    from mockserver.normal import _normal

    slow = json.dumps(
        _normal(value, whole=True), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    assert normal_key(value) == slow


def test_a_body_seen_again_with_other_headers_is_matched_again():
    """The matcher keeps what it found on a parsed request (the engine keeps those per body);
    the same body with other headers must be matched again."""
    from mockserver.engine import MockEngine

    engine = MockEngine(
        load_text(
            """
scenarios:
  - name: blue
    match: {headers: {x-team: blue}}
    reply: {content: blue}
  - name: anyone
    reply: {content: anyone}
""",
            "h.yaml",
        )
    )
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    blue = ((b"x-team", b"blue"),)
    answers = [
        json.loads(engine.handle_chat(raw, headers).body)["choices"][0]["message"]["content"]
        for headers in ((), (), blue, (), blue)
    ]
    assert answers == ["anyone", "anyone", "blue", "anyone", "blue"]


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_the_made_once_encoder_writes_what_the_json_encoder_writes(value):
    """`normal._dumps` calls a C encoder made once; it must write what `JSONEncoder.encode`
    with the same settings writes (and fall back to it where there is no C encoder)."""
    from mockserver import normal

    expected = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert normal._dumps(value) == expected.encode(value)
    assert normal._dumps(["é", {"b": 1.0, "a": float("nan")}]) == expected.encode(
        ["é", {"b": 1.0, "a": float("nan")}]
    )
