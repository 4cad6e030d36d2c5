"""Scenario files: what loads, and the `file:line: key.path: problem` for what does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mockserver.errors import ScenarioError
from mockserver.scenarios import load_scenarios, load_text


def load(text: str):
    return load_text(textwrap.dedent(text), "t.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(text)
    return [str(p) for p in caught.value.problems]


def test_a_full_reply_loads_into_dataclasses():
    loaded = load("""
        version: 1
        scenarios:
          - name: all
            priority: 3
            optional: true
            match: {model: "gpt-4o*", stream: true}
            reply:
              content: {a: 1, b: [true, null]}
              tool_calls:
                - {name: f, arguments: {x: "é"}}
                - {name: g, id: call_1, arguments: '{"y": 2}'}
              finish_reason: stop
              usage: {prompt_tokens: 5}
              headers: {X-Trace: abc, retry-after: 2, x-drop: null}
              stream: {chunk_size: 4, first_chunk_delay_ms: 5, chunk_delay_ms: 1.5}
              delay_ms: 7
              model: pinned
    """)
    (scenario,) = loaded.scenarios
    assert scenario.name == "all"
    assert scenario.priority == 3
    assert scenario.optional is True
    assert [c.key for c in scenario.conditions] == [
        "scenarios[0].match.model",
        "scenarios[0].match.stream",
    ]
    (reply,) = scenario.replies
    choice = reply.choices[0]
    assert choice.content == '{"a":1,"b":[true,null]}'
    assert [(t.name, t.arguments, t.id) for t in choice.tool_calls] == [
        ("f", '{"x":"é"}', None),
        ("g", '{"y": 2}', "call_1"),
    ]
    assert reply.usage == {"prompt_tokens": 5}
    assert reply.headers == (("x-trace", "abc"), ("retry-after", "2"), ("x-drop", None))
    assert (
        reply.stream.chunk_size,
        reply.stream.first_chunk_delay_ms,
        reply.stream.chunk_delay_ms,
    ) == (4, 5.0, 1.5)
    assert reply.delay_ms == 7.0
    assert reply.model == "pinned"
    assert scenario.where == "t.yaml:4"


def test_sequence_and_after():
    loaded = load("""
        scenarios:
          - name: s
            sequence:
              - error: 429
              - content: ok
            after: error
    """)
    (scenario,) = loaded.scenarios
    assert scenario.after == "error"
    assert scenario.replies[0].error is not None and scenario.replies[0].error.status == 429
    assert scenario.replies[1].choices[0].content == "ok"


def test_unnamed_scenarios_get_a_name_from_their_place():
    loaded = load("""
        scenarios:
          - reply: {content: a}
          - reply: {content: b}
    """)
    assert [s.name for s in loaded.scenarios] == ["t.yaml#1", "t.yaml#2"]


def test_yaml_anchors_and_merge_keys_work():
    loaded = load("""
        scenarios:
          - name: a
            reply: &r {content: shared, delay_ms: 3}
          - name: b
            reply: {<<: *r, delay_ms: 4}
    """)
    assert [s.replies[0].delay_ms for s in loaded.scenarios] == [3.0, 4.0]
    assert loaded.scenarios[1].replies[0].choices[0].content == "shared"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """
            scenarios:
              - name: a
                reply:
                  contnet: hi
            """,
            [
                "t.yaml:5: scenarios[0].reply.contnet: unknown key 'contnet'; did you mean 'content'?"
            ],
            id="unknown-key-suggests",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                mtach: {model: x}
                reply: {content: hi}
            """,
            ["t.yaml:4: scenarios[0].mtach: unknown key 'mtach'; did you mean 'match'?"],
            id="unknown-scenario-key",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                match: {last_user_mesage: hi}
                reply: {content: hi}
            """,
            [
                "t.yaml:4: scenarios[0].match.last_user_mesage: unknown key 'last_user_mesage'; did you mean 'last_user_message'?"
            ],
            id="unknown-match-key",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
            """,
            ["t.yaml:3: scenarios[0]: missing required key 'reply' (or 'sequence')"],
            id="no-reply",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {}
            """,
            [
                "t.yaml:4: scenarios[0].reply: a reply needs content, refusal, reasoning, harmony, tool_calls, function_call, audio, choices or error"
            ],
            id="empty-reply",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: hi, error: {status: 500}}
            """,
            ["t.yaml:4: scenarios[0].reply.content: an error reply cannot also have content"],
            id="error-and-content",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {error: {status: 200}}
            """,
            [
                "t.yaml:4: scenarios[0].reply.error.status: expected an integer between 400 and 599, got 200"
            ],
            id="error-status-range",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply:
                  tool_calls:
                    - arguments: {x: 1}
            """,
            ["t.yaml:6: scenarios[0].reply.tool_calls[0]: missing required key 'name'"],
            id="tool-call-without-name",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: hi, finish_reason: done}
            """,
            [
                "t.yaml:4: scenarios[0].reply.finish_reason: unknown value 'done' (allowed: stop, length, tool_calls, content_filter, function_call)"
            ],
            id="finish-reason-enum",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply:
                  audio: {transcript: hi, format: mp3}
            """,
            [
                "t.yaml:5: scenarios[0].reply.audio.format: mockserver cannot generate mp3 audio; give a `file:` with the audio (it generates only wav and pcm16)"
            ],
            id="mp3-without-file",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply:
                  audio: {transcript: hi, file: missing.wav}
            """,
            ["cannot read audio file"],
            id="audio-file-missing",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                match: {last_user_message: {regex: "(unclosed"}}
                reply: {content: hi}
            """,
            [
                "t.yaml:4: scenarios[0].match.last_user_message.regex: invalid regular expression: missing ), unterminated subpattern at position 0"
            ],
            id="bad-regex",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                match: {stream: "yes"}
                reply: {content: hi}
            """,
            ["t.yaml:4: scenarios[0].match.stream: expected true or false, got a string ('yes')"],
            id="stream-not-bool",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: hi}
                after: error
            """,
            ["t.yaml:5: scenarios[0].after: `after` applies to a `sequence`"],
            id="after-without-sequence",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                sequence: [{content: a}]
                after: forever
            """,
            [
                "t.yaml:5: scenarios[0].after: unknown value 'forever' (allowed: repeat_last, error, next)"
            ],
            id="after-enum",
        ),
        pytest.param(
            """
            scenarios:
              - name: dup
                reply: {content: a}
              - name: dup
                reply: {content: b}
            """,
            ["t.yaml:5: name: duplicate scenario name 'dup' (first used at t.yaml:3)"],
            id="duplicate-names",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: a, content: b}
            """,
            ["t.yaml:4: scenarios[0].reply.content: duplicate key 'content'"],
            id="duplicate-keys",
        ),
        pytest.param(
            """
            version: 2
            scenarios: []
            """,
            ["t.yaml:2: version: unsupported version 2; this mockserver reads version 1"],
            id="version",
        ),
        pytest.param(
            """
            scenarios: {a: 1}
            """,
            ["t.yaml:2: scenarios: expected a list of scenarios, got a mapping"],
            id="scenarios-not-list",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: "unterminated
            """,
            ["invalid YAML"],
            id="bad-yaml",
        ),
        pytest.param(
            "", ["t.yaml:1: the file is empty; expected `version: 1` and `scenarios:`"], id="empty"
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: hi, stream: {chunk_size: 0}}
            """,
            ["t.yaml:4: scenarios[0].reply.stream.chunk_size: expected an integer >= 1, got 0"],
            id="chunk-size",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                match: {content_parts: [video]}
                reply: {content: hi}
            """,
            [
                "t.yaml:4: scenarios[0].match.content_parts: unknown part kind 'video' (allowed: text, image, image_url, audio, input_audio, file, refusal)"
            ],
            id="part-kind",
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply:
                  raw: {status: 200, body: "{}", headers: {x-price: "5 €", "x bad": b, x-line: "a\\nb"}}
            """,
            [
                "t.yaml:5: scenarios[0].reply.raw.headers.x-price: a header value may hold "
                "printable ASCII, spaces, tabs and Latin-1 letters, not a string ('5 €')",
                "t.yaml:5: scenarios[0].reply.raw.headers.x bad: 'x bad' is not a header name",
                "t.yaml:5: scenarios[0].reply.raw.headers.x-line: a header value may hold",
            ],
            id="raw-headers",  # caught at load: they could not be sent
        ),
        pytest.param(
            """
            scenarios:
              - name: a
                reply: {content: hi, headers: {x-a: "\\u0001"}}
            """,
            ["t.yaml:4: scenarios[0].reply.headers.x-a: a header value may hold"],
            id="reply-headers",
        ),
    ],
)
def test_problems_name_file_line_and_key(text, expected):
    found = problems(text)
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert want in got, f"{got!r} does not contain {want!r}"


def test_every_problem_is_reported_at_once():
    found = problems("""
        scenarios:
          - name: a
            reply: {contnet: a}
          - name: b
            reply: {content: b, finish_reason: nope}
    """)
    assert len(found) == 2
    assert found[0].startswith("t.yaml:4:") and found[1].startswith("t.yaml:6:")


def test_unsafe_yaml_tags_are_refused():
    found = problems("""
        scenarios:
          - name: a
            reply: {content: !!python/object/apply:os.system ["true"]}
    """)
    assert "invalid YAML" in found[0]


def test_folders_load_in_sorted_order_and_missing_paths_are_errors(tmp_path: Path):
    (tmp_path / "b.yaml").write_text("scenarios: [{name: second, reply: {content: b}}]")
    (tmp_path / "a.yml").write_text("scenarios: [{name: first, reply: {content: a}}]")
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = load_scenarios([tmp_path])
    assert [s.name for s in loaded.scenarios] == ["first", "second"]
    with pytest.raises(ScenarioError, match="no such file or folder"):
        load_scenarios([tmp_path / "nope.yaml"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match=r"no \.yaml or \.yml files"):
        load_scenarios([empty])


def test_audio_file_is_read_relative_to_the_yaml(tmp_path: Path):
    (tmp_path / "clip.mp3").write_bytes(b"ID3fake")
    (tmp_path / "s.yaml").write_text(
        "scenarios: [{name: a, reply: {audio: {transcript: hi, file: clip.mp3}}}]"
    )
    (scenario,) = load_scenarios([tmp_path / "s.yaml"]).scenarios
    spoken = scenario.replies[0].choices[0].audio
    assert spoken is not None and spoken.data == b"ID3fake" and spoken.format == "mp3"


def test_model_names_are_the_exact_ones():
    loaded = load("""
        scenarios:
          - {name: a, match: {model: gpt-4o}, reply: {content: a}}
          - {name: b, match: {model: "gpt-4*"}, reply: {content: b}}
          - {name: c, reply: {content: c, model: pinned-2024}}
    """)
    assert loaded.model_names() == ("gpt-4o", "pinned-2024")


# -- reading big files fast: the collector paused, scalar tags found once ------------------------


def test_the_collector_is_paused_while_reading_and_back_on_after_even_on_error(monkeypatch):
    import gc

    from mockserver import scenarios

    during: list[bool] = []
    read = scenarios.read_document

    def spy(*args, **kwargs):
        during.append(gc.isenabled())
        return read(*args, **kwargs)

    monkeypatch.setattr(scenarios, "read_document", spy)
    assert gc.isenabled()
    load_text("scenarios:\n" + "".join(f"  - reply: {{content: 'r{i}'}}\n" for i in range(300)))
    assert during == [False]
    assert gc.isenabled()
    with pytest.raises(ScenarioError):
        load_text("scenarios:\n  - reply: {content: [unclosed\n")
    assert gc.isenabled()
    gc.disable()  # paused by someone else: reading leaves it paused
    try:
        load_text("scenarios:\n  - reply: {content: hi}\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "No",
        "true",
        "~",
        "null",
        "1",
        "-1",
        "0x1F",
        "0o17",
        "1.0",
        ".inf",
        "-.Inf",
        ".nan",
        "1e3",
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "1_000",
        "190:20:30",
        "plain text",
        "'quoted 1'",
        '"true"',
        "'yes'",
    ],
)
def test_scalars_read_as_pyyaml_reads_them(text):
    """The fast loader finds each plain scalar's tag once per text: the same values as PyYAML,
    the second time too."""
    import math

    import yaml

    from mockserver.yamlsource import parse_yaml

    document = f"a: {text}\nb: {text}\nc: [{text}, {text}]\n"
    expected = yaml.safe_load(document)
    root, _ = parse_yaml(document, "t.yaml")
    assert root is not None
    got = root.value
    if isinstance(expected["a"], float) and math.isnan(expected["a"]):
        assert all(math.isnan(v) for v in (got["a"], got["b"], *got["c"]))
    else:
        assert got == expected
