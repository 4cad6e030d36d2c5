"""Issue 2 through the official openai SDK (3.x, strict response validation) on a live server.

Every reply read here is also validated against OpenAI's schema by the `live` fixture's
transport; a violation fails the test at teardown.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import wave

import openai
import pydantic
import pytest

ID = re.compile(r"chatcmpl-[A-Za-z0-9]{29}")
CALL_ID = re.compile(r"call_[A-Za-z0-9]{24}")
AUDIO_ID = re.compile(r"audio_[0-9a-f]{32}")
FINGERPRINT = re.compile(r"fp_[0-9a-f]{10}")
REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def tool(name: str) -> dict[str, object]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
    }


def deltas(stream, field: str = "content") -> list[str]:
    """The non-empty `field` increments of choice 0 in a stream of chunks."""
    return [
        getattr(c.choices[0].delta, field)
        for c in stream
        if c.choices and getattr(c.choices[0].delta, field)
    ]


async def adeltas(stream, field: str = "content") -> list[str]:
    return [
        getattr(c.choices[0].delta, field)
        async for c in stream
        if c.choices and getattr(c.choices[0].delta, field)
    ]


# -- text -------------------------------------------------------------------------------------

TEXT = """
    version: 1
    scenarios:
      - name: hello
        match: {last_user_message: hello}
        reply: {content: "Hello! How can I help you today?"}
      - name: pinned
        match: {last_user_message: pinned}
        reply:
          content: "ok"
          model: gpt-4o-2024-08-06
          system_fingerprint: fp_0123456789
"""


def check_envelope(reply, model: str = "gpt-4o-mini") -> None:
    assert ID.fullmatch(reply.id), reply.id
    assert reply.object == "chat.completion"
    assert type(reply.created) is int
    assert abs(reply.created - time.time()) < 60
    assert reply.model == model
    assert FINGERPRINT.fullmatch(reply.system_fingerprint), reply.system_fingerprint


def test_text_sync(live):
    mock = live(TEXT)
    reply = mock.client.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    check_envelope(reply)
    choice = reply.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello! How can I help you today?"
    assert choice.message.refusal is None
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert len(reply.choices) == 1


@pytest.mark.anyio
async def test_text_async(live):
    mock = live(TEXT)
    reply = await mock.aclient.chat.completions.create(model="gpt-4o-mini", messages=user("hello"))
    check_envelope(reply)
    assert reply.choices[0].message.content == "Hello! How can I help you today?"


def test_text_stream_sync(live):
    mock = live(TEXT)
    stream = mock.client.chat.completions.create(
        model="gpt-4o-mini", messages=user("hello"), stream=True
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces) == "Hello! How can I help you today?"
    assert len(pieces) > 3  # word-sized deltas, not one blob
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    assert ID.fullmatch(chunks[0].id)
    assert len({c.created for c in chunks}) == 1


@pytest.mark.anyio
async def test_text_stream_async(live):
    mock = live(TEXT)
    stream = await mock.aclient.chat.completions.create(
        model="gpt-4o-mini", messages=user("hello"), stream=True
    )
    assert "".join(await adeltas(stream)) == "Hello! How can I help you today?"


def test_stream_helper_sync(live):
    mock = live(TEXT)
    with mock.client.chat.completions.stream(model="gpt-4o-mini", messages=user("hello")) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "content.delta" in events
    assert "content.done" in events
    assert final.choices[0].message.content == "Hello! How can I help you today?"
    assert final.choices[0].finish_reason == "stop"
    check_envelope(final)


@pytest.mark.anyio
async def test_stream_helper_async(live):
    mock = live(TEXT)
    async with mock.aclient.chat.completions.stream(
        model="gpt-4o-mini", messages=user("hello"), stream_options={"include_usage": True}
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "Hello! How can I help you today?"
    assert final.usage is not None
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens


@pytest.mark.anyio
async def test_every_reply_is_schema_checked(live, violations):
    """The fixture's transport sees every reply, streamed or not, sync or async."""
    mock = live(TEXT)
    mock.client.chat.completions.create(model="m", messages=user("hello"))
    list(mock.client.chat.completions.create(model="m", messages=user("hello"), stream=True))
    with mock.client.chat.completions.stream(model="m", messages=user("hello")) as stream:
        stream.get_final_completion()
    await mock.aclient.chat.completions.create(model="m", messages=user("hello"))
    async for _ in await mock.aclient.chat.completions.create(
        model="m", messages=user("hello"), stream=True
    ):
        pass
    async with mock.aclient.chat.completions.stream(model="m", messages=user("hello")) as s:
        await s.get_final_completion()
    with pytest.raises(openai.NotFoundError):
        mock.client.chat.completions.create(model="m", messages=user("nothing"))
    mock.client.models.list()
    assert violations.replies == 8
    assert violations.found == []


def test_model_echoes_the_request_unless_pinned(live):
    mock = live(TEXT)
    for model in ("gpt-4o-mini", "my-local-llama", "o3"):
        reply = mock.client.chat.completions.create(model=model, messages=user("hello"))
        assert reply.model == model
    pinned = mock.client.chat.completions.create(model="gpt-4o", messages=user("pinned"))
    assert pinned.model == "gpt-4o-2024-08-06"
    assert pinned.system_fingerprint == "fp_0123456789"
    chunks = list(
        mock.client.chat.completions.create(model="gpt-4o", messages=user("pinned"), stream=True)
    )
    assert {c.model for c in chunks} == {"gpt-4o-2024-08-06"}


def test_ids_differ_between_replies_and_fingerprint_is_stable(live):
    mock = live(TEXT)
    replies = [
        mock.client.chat.completions.create(model="m", messages=user("hello")) for _ in range(3)
    ]
    assert len({r.id for r in replies}) == 3
    assert len({r.system_fingerprint for r in replies}) == 1


def test_request_id_header(live):
    mock = live(TEXT)
    raw = mock.client.chat.completions.with_raw_response.create(model="m", messages=user("hello"))
    completion = raw.parse()
    assert REQUEST_ID.fullmatch(raw.headers["x-request-id"])
    assert completion._request_id == raw.headers["x-request-id"]
    assert raw.request_id == raw.headers["x-request-id"]
    assert raw.headers["content-type"] == "application/json"
    other = mock.client.chat.completions.create(model="m", messages=user("hello"))
    assert other._request_id != completion._request_id
    assert REQUEST_ID.fullmatch(other._request_id)


# -- structured output ------------------------------------------------------------------------

STRUCTURED = """
    version: 1
    scenarios:
      - name: city
        match: {response_format: json_schema}
        reply:
          content: {name: Paris, country: France, population: 2102650, tags: [capital, "é"]}
      - name: json-mode
        match: {response_format: json_object}
        reply:
          content: {ok: true, items: [1, 2.5, null]}
"""


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int
    tags: list[str]


def test_object_content_becomes_a_json_string(live):
    mock = live(STRUCTURED)
    reply = mock.client.chat.completions.create(
        model="m", messages=user("json please"), response_format={"type": "json_object"}
    )
    content = reply.choices[0].message.content
    assert json.loads(content) == {"ok": True, "items": [1, 2.5, None]}


def test_parse_gives_the_pydantic_model(live):
    mock = live(STRUCTURED)
    reply = mock.client.chat.completions.parse(
        model="gpt-4o", messages=user("Describe Paris"), response_format=City
    )
    message = reply.choices[0].message
    assert message.parsed == City(
        name="Paris", country="France", population=2102650, tags=["capital", "é"]
    )
    assert json.loads(message.content)["tags"] == ["capital", "é"]
    # what the SDK sent, as the scenario saw it
    body = mock.engine.journal[-1].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


@pytest.mark.anyio
async def test_parse_async_and_stream_helper_with_response_format(live):
    mock = live(STRUCTURED)
    reply = await mock.aclient.chat.completions.parse(
        model="gpt-4o", messages=user("Describe Paris"), response_format=City
    )
    assert reply.choices[0].message.parsed.population == 2102650
    async with mock.aclient.chat.completions.stream(
        model="gpt-4o", messages=user("Describe Paris"), response_format=City
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == reply.choices[0].message.parsed


# -- tool calls -------------------------------------------------------------------------------

TOOLS = """
    version: 1
    scenarios:
      - name: answer
        priority: 10
        match: {last_message: {role: tool}}
        reply: {content: "It is 18°C in Paris."}
      - name: one-call
        match: {tools: [get_weather], last_user_message: {contains: weather}}
        reply:
          tool_calls:
            - name: get_weather
              arguments: {city: Paris, unit: celsius, days: 2, nested: {a: [1, true]}}
      - name: parallel
        match: {tools: [get_weather, get_time]}
        reply:
          tool_calls:
            - name: get_weather
              arguments: {city: Tokyo}
            - name: get_time
              id: call_pinnedTimeLookup0001
              arguments: '{"timezone": "Asia/Tokyo"}'
            - name: get_weather
              arguments: {city: "Zürich"}
      - name: legacy
        match: {last_user_message: {contains: legacy}}
        reply:
          function_call: {name: lookup, arguments: {query: mockserver}}
"""


def test_one_tool_call(live):
    mock = live(TOOLS)
    reply = mock.client.chat.completions.create(
        model="gpt-4o", messages=user("weather?"), tools=[tool("get_weather")]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert CALL_ID.fullmatch(call.id), call.id
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {
        "city": "Paris",
        "unit": "celsius",
        "days": 2,
        "nested": {"a": [1, True]},
    }
    again = mock.client.chat.completions.create(
        model="gpt-4o", messages=user("weather?"), tools=[tool("get_weather")]
    )
    assert again.choices[0].message.tool_calls[0].id != call.id  # a fresh id per reply


def test_parallel_tool_calls(live):
    mock = live(TOOLS)
    reply = mock.client.chat.completions.create(
        model="gpt-4o", messages=user("plan"), tools=[tool("get_weather"), tool("get_time")]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time", "get_weather"]
    assert CALL_ID.fullmatch(calls[0].id)
    assert calls[1].id == "call_pinnedTimeLookup0001"
    assert CALL_ID.fullmatch(calls[2].id)
    assert calls[0].id != calls[2].id
    assert calls[1].function.arguments == '{"timezone": "Asia/Tokyo"}'  # kept as written
    assert json.loads(calls[2].function.arguments) == {"city": "Zürich"}


def test_tool_loop_ends_with_the_answer(live):
    mock = live(TOOLS)
    tools = [tool("get_weather")]
    messages: list = user("weather in Paris?")
    first = mock.client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 18}'},
    ]
    second = mock.client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    assert second.choices[0].message.content == "It is 18°C in Paris."
    assert second.choices[0].finish_reason == "stop"
    assert [e.scenario for e in mock.engine.journal] == ["one-call", "answer"]


def test_stream_helper_joins_tool_arguments(live):
    mock = live(TOOLS)
    with mock.client.chat.completions.stream(
        model="gpt-4o", messages=user("plan"), tools=[tool("get_weather"), tool("get_time")]
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Tokyo"},
        {"timezone": "Asia/Tokyo"},
        {"city": "Zürich"},
    ]
    assert calls[1].id == "call_pinnedTimeLookup0001"
    assert all(CALL_ID.fullmatch(c.id) for c in (calls[0], calls[2]))
    assert all(c.type == "function" for c in calls)
    assert [e.name for e in done] == ["get_weather", "get_time", "get_weather"]


@pytest.mark.anyio
async def test_streamed_tool_call_arguments_arrive_in_pieces(live):
    mock = live(TOOLS)
    stream = await mock.aclient.chat.completions.create(
        model="gpt-4o", messages=user("weather"), tools=[tool("get_weather")], stream=True
    )
    fragments = []
    finish = None
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or ():
            fragments.append(call)
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert fragments[0].id is not None
    assert CALL_ID.fullmatch(fragments[0].id)
    assert fragments[0].function.arguments == ""
    assert len(fragments) > 3
    assert all(f.id is None and f.index == 0 for f in fragments[1:])
    joined = "".join(f.function.arguments for f in fragments)
    assert json.loads(joined)["city"] == "Paris"


def test_parse_with_a_pydantic_tool(live):
    class GetWeather(pydantic.BaseModel):
        city: str
        days: int

    mock = live("""
        version: 1
        scenarios:
          - match: {tools: [GetWeather]}
            reply:
              tool_calls: [{name: GetWeather, arguments: {city: Oslo, days: 3}}]
    """)
    reply = mock.client.chat.completions.parse(
        model="gpt-4o",
        messages=user("weather"),
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.parsed_arguments == GetWeather(city="Oslo", days=3)


def test_legacy_function_call(live):
    mock = live(TOOLS)
    functions = [{"name": "lookup", "parameters": {"type": "object", "properties": {}}}]
    reply = mock.client.chat.completions.create(
        model="gpt-4o", messages=user("legacy please"), functions=functions
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    assert choice.message.content is None
    assert choice.message.function_call.name == "lookup"
    assert json.loads(choice.message.function_call.arguments) == {"query": "mockserver"}
    stream = mock.client.chat.completions.create(
        model="gpt-4o", messages=user("legacy please"), functions=functions, stream=True
    )
    chunks = list(stream)
    calls = [c.choices[0].delta.function_call for c in chunks if c.choices[0].delta.function_call]
    assert calls[0].name == "lookup"
    assert json.loads("".join(c.arguments for c in calls)) == {"query": "mockserver"}
    assert chunks[-1].choices[0].finish_reason == "function_call"


def test_tool_calls_become_a_function_call_for_the_functions_api(live):
    mock = live(TOOLS)
    reply = mock.client.chat.completions.create(
        model="gpt-4o",
        messages=user("weather"),
        functions=[{"name": "get_weather"}],
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    assert choice.message.function_call.name == "get_weather"


# -- refusal ----------------------------------------------------------------------------------

REFUSAL = """
    version: 1
    scenarios:
      - reply: {refusal: "I'm sorry, but I can't help with that request."}
"""


def test_refusal(live):
    mock = live(REFUSAL)
    reply = mock.client.chat.completions.create(model="m", messages=user("explosives"))
    message = reply.choices[0].message
    assert message.refusal == "I'm sorry, but I can't help with that request."
    assert message.content is None
    assert reply.choices[0].finish_reason == "stop"


def test_refusal_streamed_and_parsed(live):
    mock = live(REFUSAL)
    chunks = list(mock.client.chat.completions.create(model="m", messages=user("x"), stream=True))
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.content is None
    assert first.refusal == ""
    pieces = [c.choices[0].delta.refusal for c in chunks[1:] if c.choices[0].delta.refusal]
    assert len(pieces) > 3
    assert "".join(pieces) == "I'm sorry, but I can't help with that request."
    assert not any(c.choices[0].delta.content for c in chunks)
    parsed = mock.client.chat.completions.parse(model="m", messages=user("x"), response_format=City)
    assert parsed.choices[0].message.parsed is None
    assert parsed.choices[0].message.refusal.startswith("I'm sorry")
    with mock.client.chat.completions.stream(
        model="m", messages=user("x"), response_format=City
    ) as stream:
        kinds = {e.type for e in stream}
        final = stream.get_final_completion()
    assert "refusal.delta" in kinds
    assert "refusal.done" in kinds
    assert final.choices[0].message.refusal == "I'm sorry, but I can't help with that request."
    assert final.choices[0].message.content is None


# -- audio ------------------------------------------------------------------------------------

AUDIO = """
    version: 1
    scenarios:
      - name: from-file
        match: {last_user_message: {contains: recording}}
        reply:
          audio: {transcript: "From a file.", file: audio/hello.mp3}
      - name: text-turned-audio
        match: {last_user_message: plain}
        reply: {content: "Short."}
      - name: generated
        match: {modalities: [audio]}
        reply:
          audio: {transcript: "Hello! I am a generated voice, speaking a little longer."}
"""


def speak(fmt: str, text: str = "say something") -> dict[str, object]:
    return {
        "messages": user(text),
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": fmt},
    }


def load_audio_scenarios(tmp_path, text: str = AUDIO):
    from mockserver.scenarios import load_text

    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "hello.mp3").write_bytes(b"ID3\x03\x00fake-mp3-frames" * 10)
    return load_text(text, "audio.yaml", base=tmp_path)


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getframerate() == 24_000
        assert w.getnframes() * 2 == len(data) - 44
        return w.getnframes() / w.getframerate()


def test_generated_wav_audio(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    reply = mock.client.chat.completions.create(model="gpt-4o-audio-preview", **speak("wav"))
    message = reply.choices[0].message
    assert message.content is None
    assert reply.choices[0].finish_reason == "stop"
    spoken = message.audio
    assert AUDIO_ID.fullmatch(spoken.id), spoken.id
    assert spoken.transcript == "Hello! I am a generated voice, speaking a little longer."
    assert type(spoken.expires_at) is int
    assert spoken.expires_at > reply.created
    data = base64.b64decode(spoken.data, validate=True)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    seconds = wav_seconds(data)
    # about 15 characters a second of speech
    assert 2.0 < seconds < 6.0, seconds
    assert reply.usage.completion_tokens_details.audio_tokens > 0
    short = mock.client.chat.completions.create(model="m", **speak("wav", "plain"))
    assert short.choices[0].message.audio.transcript == "Short."
    assert wav_seconds(base64.b64decode(short.choices[0].message.audio.data)) < seconds


def test_generated_pcm16_audio(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    reply = mock.client.chat.completions.create(model="m", **speak("pcm16"))
    data = base64.b64decode(reply.choices[0].message.audio.data)
    assert data[:4] != b"RIFF"
    assert len(data) % 2 == 0
    wav = base64.b64decode(
        mock.client.chat.completions.create(model="m", **speak("wav")).choices[0].message.audio.data
    )
    assert wav[44:] == data  # the same samples, without the header


def test_audio_from_a_file(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    reply = mock.client.chat.completions.create(model="m", **speak("mp3", "play the recording"))
    spoken = reply.choices[0].message.audio
    assert base64.b64decode(spoken.data) == (tmp_path / "audio" / "hello.mp3").read_bytes()
    assert spoken.transcript == "From a file."


def test_a_file_in_another_format_is_a_clear_error(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    with pytest.raises(openai.InternalServerError) as caught:
        mock.client.chat.completions.create(model="m", **speak("wav", "play the recording"))
    assert caught.value.type == "mockserver_scenario_error"
    assert "'from-file'" in caught.value.message
    assert "mp3 audio, but the request asks for wav" in caught.value.message


def test_mp3_without_a_file_is_a_clear_error(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    with pytest.raises(openai.InternalServerError) as caught:
        mock.client.chat.completions.create(model="m", **speak("mp3"))
    error = caught.value
    assert error.type == "mockserver_scenario_error"
    assert "mp3" in error.message
    assert "'generated'" in error.message
    assert "file" in error.message
    assert len(mock.engine.journal) == 1  # x-should-retry: false


def test_streamed_audio_deltas_concatenate_to_the_same_data(live, tmp_path):
    mock = live(load_audio_scenarios(tmp_path))
    whole = mock.client.chat.completions.create(model="m", **speak("pcm16"))
    chunks = list(mock.client.chat.completions.create(model="m", stream=True, **speak("pcm16")))
    # `delta.audio` (SDK type ChoiceDeltaAudio, not in OpenAI's spec): id, then fragments
    parts = [c.choices[0].delta.audio for c in chunks if c.choices[0].delta.audio]
    assert AUDIO_ID.fullmatch(parts[0].id)
    assert parts[0].transcript == ""
    assert all(p.id is None for p in parts[1:])
    data = b"".join(base64.b64decode(p.data) for p in parts if p.data)
    assert data == base64.b64decode(whole.choices[0].message.audio.data)
    assert sum(p.data is not None for p in parts) > 3
    transcript = "".join(p.transcript or "" for p in parts)
    assert transcript == whole.choices[0].message.audio.transcript
    assert type(parts[-1].expires_at) is int
    assert parts[-1].data is None
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[0].choices[0].delta.content is None
    # the stream helper joins the fragments' strings; they must still be the same audio
    with mock.client.chat.completions.stream(model="m", **speak("wav")) as helper:
        final = helper.get_final_completion()
    joined = final.choices[0].message.audio
    assert AUDIO_ID.fullmatch(joined.id)
    assert wav_seconds(base64.b64decode(joined.data, validate=True)) > 2.0
    assert joined.transcript == whole.choices[0].message.audio.transcript


# -- n > 1 ------------------------------------------------------------------------------------

CHOICES = """
    version: 1
    scenarios:
      - name: three
        match: {params: {n: 3}}
        reply:
          choices:
            - content: "Sparrow"
            - content: "Lumen light"
            - {refusal: "No."}
      - name: one
        reply: {content: "same for all"}
"""


def test_n_choices(live):
    mock = live(CHOICES)
    reply = mock.client.chat.completions.create(model="m", messages=user("names"), n=3)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert [c.message.content for c in reply.choices] == ["Sparrow", "Lumen light", None]
    assert reply.choices[2].message.refusal == "No."
    assert [c.finish_reason for c in reply.choices] == ["stop"] * 3
    cycled = mock.client.chat.completions.create(model="m", messages=user("names"), n=2)
    assert [c.message.content for c in cycled.choices] == ["same for all"] * 2


def test_n_choices_streamed(live):
    mock = live(CHOICES)
    chunks = list(
        mock.client.chat.completions.create(model="m", messages=user("x"), n=3, stream=True)
    )
    assert chunks[0].choices[0].index == 0
    assert all(len(c.choices) == 1 for c in chunks)
    first_seen = []
    for c in chunks:
        if c.choices[0].index not in first_seen:
            first_seen.append(c.choices[0].index)
    assert first_seen == [0, 1, 2]
    for index in range(3):
        own = [c.choices[0] for c in chunks if c.choices[0].index == index]
        assert own[0].delta.role == "assistant"
        assert [o.finish_reason for o in own].count("stop") == 1
        assert own[-1].finish_reason == "stop"
    with mock.client.chat.completions.stream(model="m", messages=user("x"), n=3) as stream:
        final = stream.get_final_completion()
    assert [c.message.content for c in final.choices] == ["Sparrow", "Lumen light", None]
    assert final.choices[2].message.refusal == "No."


# -- logprobs ---------------------------------------------------------------------------------


def test_logprobs_are_deterministic(live):
    mock = live(TEXT)
    kwargs = {"model": "m", "messages": user("hello"), "logprobs": True, "top_logprobs": 3}
    first = mock.client.chat.completions.create(**kwargs)
    second = mock.client.chat.completions.create(**kwargs)
    content = first.choices[0].logprobs.content
    assert "".join(t.token for t in content) == first.choices[0].message.content
    assert len(content) > 3
    for t in content:
        assert t.logprob <= 0
        assert t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token
        assert [x.logprob for x in t.top_logprobs] == sorted(
            (x.logprob for x in t.top_logprobs), reverse=True
        )
    assert first.choices[0].logprobs.refusal is None
    assert second.choices[0].logprobs == first.choices[0].logprobs
    plain = mock.client.chat.completions.create(model="m", messages=user("hello"), logprobs=True)
    assert all(t.top_logprobs == [] for t in plain.choices[0].logprobs.content)
    assert [t.logprob for t in plain.choices[0].logprobs.content] == [t.logprob for t in content]


def test_logprobs_streamed(live):
    mock = live(TEXT)
    chunks = list(
        mock.client.chat.completions.create(
            model="m", messages=user("hello"), logprobs=True, top_logprobs=1, stream=True
        )
    )
    tokens = []
    for c in chunks:
        if c.choices[0].delta.content:
            entries = c.choices[0].logprobs.content
            assert "".join(e.token for e in entries) == c.choices[0].delta.content
            tokens += entries
    whole = mock.client.chat.completions.create(
        model="m", messages=user("hello"), logprobs=True, top_logprobs=1
    )
    assert tokens == whole.choices[0].logprobs.content


# -- usage ------------------------------------------------------------------------------------

USAGE = """
    version: 1
    scenarios:
      - name: pinned
        match: {last_user_message: {contains: count}}
        reply:
          content: "Counted."
          usage:
            prompt_tokens: 1200
            completion_tokens: 3
            prompt_tokens_details: {cached_tokens: 1024}
      - name: long
        match: {last_user_message: long}
        reply: {content: "A much longer answer, with many more words in it than the other."}
      - name: short
        reply: {content: "Short."}
"""


def test_usage_is_derived(live):
    mock = live(USAGE)

    def usage(text: str, **kwargs):
        return mock.client.chat.completions.create(model="m", messages=user(text), **kwargs).usage

    small = usage("hi")
    big = usage("hi " * 50)
    longer = usage("long")
    for u in (small, big, longer):
        assert u.total_tokens == u.prompt_tokens + u.completion_tokens
        assert u.prompt_tokens > 0
        assert u.completion_tokens > 0
        assert u.prompt_tokens_details.cached_tokens == 0
        assert u.completion_tokens_details.reasoning_tokens == 0
        assert u.completion_tokens_details.accepted_prediction_tokens == 0
    assert big.prompt_tokens > small.prompt_tokens + 40
    assert big.completion_tokens == small.completion_tokens
    assert longer.completion_tokens > small.completion_tokens + 5
    assert usage("hi") == small  # deterministic
    system = mock.client.chat.completions.create(
        model="m", messages=[{"role": "system", "content": "Be brief."}, *user("hi")]
    ).usage
    assert system.prompt_tokens > small.prompt_tokens
    assert usage("hi", n=2).completion_tokens == 2 * small.completion_tokens


def test_usage_pinned(live):
    mock = live(USAGE)
    u = mock.client.chat.completions.create(model="m", messages=user("count my tokens")).usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (1200, 3, 1203)
    assert u.prompt_tokens_details.cached_tokens == 1024
    assert u.prompt_tokens_details.audio_tokens == 0
    with mock.client.chat.completions.stream(
        model="m", messages=user("count my tokens"), stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.usage == u


def test_streamed_usage_equals_the_non_streamed_one(live):
    mock = live(USAGE)
    whole = mock.client.chat.completions.create(model="m", messages=user("long"))
    chunks = list(
        mock.client.chat.completions.create(
            model="m",
            messages=user("long"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


# -- finish reasons ---------------------------------------------------------------------------

FINISH = """
    version: 1
    scenarios:
      - name: cut
        match: {last_user_message: {contains: essay}}
        reply: {content: "Once upon a time", finish_reason: length}
      - name: filtered
        match: {last_user_message: {contains: forbidden}}
        reply: {content: "", finish_reason: content_filter}
      - name: long
        reply: {content: "one two three four five six seven"}
"""


def test_explicit_finish_reasons(live):
    mock = live(FINISH)
    cut = mock.client.chat.completions.create(model="m", messages=user("an essay"))
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Once upon a time"
    filtered = mock.client.chat.completions.create(model="m", messages=user("forbidden"))
    assert filtered.choices[0].finish_reason == "content_filter"
    chunks = list(
        mock.client.chat.completions.create(model="m", messages=user("an essay"), stream=True)
    )
    assert chunks[-1].choices[0].finish_reason == "length"


def test_parse_raises_on_length_and_content_filter(live):
    mock = live(FINISH)
    with pytest.raises(openai.LengthFinishReasonError):
        mock.client.chat.completions.parse(
            model="m", messages=user("an essay"), response_format=City
        )
    with pytest.raises(openai.ContentFilterFinishReasonError):
        mock.client.chat.completions.parse(
            model="m", messages=user("forbidden"), response_format=City
        )


def test_max_tokens_cuts_the_reply(live):
    mock = live(FINISH)
    reply = mock.client.chat.completions.create(
        model="m", messages=user("x"), max_completion_tokens=3
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "one two three"
    assert reply.usage.completion_tokens == 3
    stopped = mock.client.chat.completions.create(model="m", messages=user("x"), stop=[" four"])
    assert stopped.choices[0].message.content == "one two three"
    assert stopped.choices[0].finish_reason == "stop"


# -- errors -----------------------------------------------------------------------------------

ERRORS = """
    version: 1
    scenarios:
      - name: custom
        match: {last_user_message: custom}
        reply:
          error:
            status: 400
            message: "Invalid 'messages[0].content': too long."
            type: invalid_request_error
            code: string_above_max_length
            param: "messages[0].content"
            headers: {x-ratelimit-remaining-requests: "0", x-extra: "yes"}
      - name: quota
        match: {last_user_message: quota}
        reply: {error: {status: 429, type: insufficient_quota, code: insufficient_quota}}
      - name: no-retry
        match: {last_user_message: no-retry}
        reply: {error: {status: 503, headers: {x-should-retry: "false"}}}
      - name: status
        match: {last_user_message: {regex: "^status"}}
        reply: {error: 500}
"""
# one scenario per status, by message
ERRORS += "".join(
    f"""
      - name: s{status}
        match: {{last_user_message: "{status}"}}
        reply: {{error: {status}}}
"""
    for status in (400, 401, 403, 404, 409, 418, 422, 429, 500, 503)
)

STATUSES = [
    # status, exception, type, code, attempts the SDK makes (max_retries=2)
    (400, openai.BadRequestError, "invalid_request_error", None, 1),
    (401, openai.AuthenticationError, "invalid_request_error", "invalid_api_key", 1),
    (403, openai.PermissionDeniedError, "invalid_request_error", None, 1),
    (404, openai.NotFoundError, "invalid_request_error", "model_not_found", 1),
    (409, openai.ConflictError, "invalid_request_error", None, 3),
    (418, openai.APIStatusError, "invalid_request_error", None, 1),
    (422, openai.UnprocessableEntityError, "invalid_request_error", None, 1),
    (429, openai.RateLimitError, "requests", "rate_limit_exceeded", 3),
    (500, openai.InternalServerError, "server_error", None, 3),
    (503, openai.InternalServerError, "server_error", None, 3),
]


@pytest.mark.parametrize(("status", "exception", "type_", "code", "attempts"), STATUSES)
def test_error_status_maps_to_the_sdk_exception(live, status, exception, type_, code, attempts):
    mock = live(ERRORS)
    started = time.perf_counter()
    with pytest.raises(exception) as caught:
        mock.client.chat.completions.create(model="gpt-4o", messages=user(str(status)))
    elapsed = time.perf_counter() - started
    error = caught.value
    assert type(error) is exception
    assert error.status_code == status
    assert error.type == type_
    assert error.code == code
    assert error.param is None
    assert isinstance(error.body, dict)
    assert error.body["message"]
    assert error.message.startswith(f"Error code: {status}")
    assert REQUEST_ID.fullmatch(error.request_id)
    assert error.response.headers["x-request-id"] == error.request_id
    assert error.response.headers["content-type"] == "application/json"
    assert len(mock.engine.journal) == attempts
    assert elapsed < 1.0  # retries wait retry-after-ms (10 ms), not the SDK's backoff


def test_error_message_defaults_name_the_model(live):
    mock = live(ERRORS)
    with pytest.raises(openai.RateLimitError) as caught:
        mock.client.with_options(max_retries=0).chat.completions.create(
            model="gpt-4o", messages=user("429")
        )
    assert "Rate limit reached for gpt-4o" in caught.value.body["message"]
    assert caught.value.response.headers["retry-after-ms"] == "10"


@pytest.mark.anyio
async def test_error_fields_and_headers(live):
    mock = live(ERRORS)
    with pytest.raises(openai.BadRequestError) as caught:
        await mock.aclient.chat.completions.create(model="m", messages=user("custom"))
    error = caught.value
    assert error.code == "string_above_max_length"
    assert error.param == "messages[0].content"
    assert error.type == "invalid_request_error"
    assert error.body == {
        "message": "Invalid 'messages[0].content': too long.",
        "type": "invalid_request_error",
        "param": "messages[0].content",
        "code": "string_above_max_length",
    }
    headers = error.response.headers
    assert headers["x-extra"] == "yes"
    assert headers.get_list("x-ratelimit-remaining-requests") == ["0"]


def test_quota_errors_are_not_retried(live):
    mock = live(ERRORS)
    with pytest.raises(openai.RateLimitError) as caught:
        mock.client.chat.completions.create(model="m", messages=user("quota"))
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(mock.engine.journal) == 1
    with pytest.raises(openai.InternalServerError):
        mock.client.chat.completions.create(model="m", messages=user("no-retry"))
    assert len(mock.engine.journal) == 2


def test_error_reply_waits_its_delay(live):
    mock = live("""
        version: 1
        scenarios:
          - reply: {error: {status: 504, headers: {x-should-retry: "false"}}, delay_ms: 150}
    """)
    started = time.perf_counter()
    with pytest.raises(openai.InternalServerError) as caught:
        mock.client.chat.completions.create(model="m", messages=user("x"))
    assert caught.value.status_code == 504
    assert time.perf_counter() - started >= 0.145


@pytest.mark.parametrize(
    ("headers", "attempts"),
    [
        ("{}", 3),  # the mock's retry-after-ms: 10
        ("{retry-after: '500'}", 1),  # over 120 s: the SDK gives up at once
        ("{retry-after-ms: '200000'}", 1),
        ("{retry-after: '0.01'}", 3),
        ("{x-should-retry: 'false'}", 1),
    ],
)
def test_retry_headers_drive_the_sdk(live, headers, attempts):
    mock = live(f"""
        version: 1
        scenarios:
          - reply: {{error: {{status: 429, headers: {headers}}}}}
    """)
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError):
        mock.client.chat.completions.create(model="m", messages=user("x"))
    assert len(mock.engine.journal) == attempts
    assert time.perf_counter() - started < 1.0


HEADERS = """
    version: 1
    scenarios:
      - reply:
          content: "ok"
          headers:
            x-ratelimit-remaining-requests: 41
            x-custom: "hello"
            openai-organization: null
"""


def test_reply_headers_reach_with_raw_response(live):
    mock = live(HEADERS)
    raw = mock.client.chat.completions.with_raw_response.create(model="m", messages=user("x"))
    assert raw.headers.get_list("x-ratelimit-remaining-requests") == ["41"]
    assert raw.headers["x-custom"] == "hello"
    assert "openai-organization" not in raw.headers
    assert raw.headers["openai-version"] == "2020-10-01"
    assert raw.parse().choices[0].message.content == "ok"
    with mock.client.chat.completions.with_streaming_response.create(
        model="m", messages=user("x"), stream=True
    ) as streamed:
        assert streamed.headers["x-custom"] == "hello"
        assert streamed.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "".join(c.choices[0].delta.content or "" for c in streamed.parse()) == "ok"


# -- sequences and retries --------------------------------------------------------------------

SEQUENCES = """
    version: 1
    scenarios:
      - name: flaky
        match: {last_user_message: flaky}
        sequence:
          - error: {status: 429, headers: {retry-after-ms: "5"}}
          - error: {status: 503}
          - content: "Worked on the third try."
      - name: once
        match: {last_user_message: once}
        sequence:
          - content: "first"
          - content: "second"
        after: error
      - name: repeat
        match: {last_user_message: repeat}
        sequence:
          - content: "first"
          - content: "last"
      - name: loop
        match: {last_user_message: loop}
        sequence:
          - tool_calls: [{name: get_weather, arguments: {city: Paris}}]
          - content: "Sunny."
"""


def test_sdk_retries_through_a_sequence(live):
    mock = live(SEQUENCES)
    started = time.perf_counter()
    reply = mock.client.chat.completions.create(model="m", messages=user("flaky"))
    assert time.perf_counter() - started < 1.0
    assert reply.choices[0].message.content == "Worked on the third try."
    journal = mock.engine.journal
    assert [e.status for e in journal] == [429, 503, 200]
    assert [e.reply_index for e in journal] == [0, 1, 2]
    # the SDK counted its attempts in a header the scenario could match on
    assert [e.request.headers["x-stainless-retry-count"] for e in journal] == ["0", "1", "2"]


@pytest.mark.anyio
async def test_async_sdk_retries_through_a_sequence(live):
    mock = live(SEQUENCES)
    stream = await mock.aclient.chat.completions.create(
        model="m", messages=user("flaky"), stream=True
    )
    assert "".join(await adeltas(stream)) == "Worked on the third try."
    assert [e.status for e in mock.engine.journal] == [429, 503, 200]


def test_sequence_without_retries_raises(live):
    mock = live(SEQUENCES)
    client = mock.client.with_options(max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=user("flaky"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=user("flaky"))
    ok = client.chat.completions.create(model="m", messages=user("flaky"))
    assert ok.choices[0].message.content == "Worked on the third try."


def test_after_error(live):
    mock = live(SEQUENCES)
    client = mock.client
    assert client.chat.completions.create(model="m", messages=user("once")).choices[
        0
    ].message.content == ("first")
    assert client.chat.completions.create(model="m", messages=user("once")).choices[
        0
    ].message.content == ("second")
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="m", messages=user("once"))
    error = caught.value
    assert error.type == "mockserver_sequence_exhausted"
    assert "'once'" in error.message
    assert "after: error" in error.message
    assert len(mock.engine.journal) == 3  # not retried


def test_after_repeat_last_is_the_default(live):
    mock = live(SEQUENCES)
    got = [
        mock.client.chat.completions.create(model="m", messages=user("repeat"))
        .choices[0]
        .message.content
        for _ in range(4)
    ]
    assert got == ["first", "last", "last", "last"]


def test_sequence_tool_call_then_answer(live):
    mock = live(SEQUENCES)
    first = mock.client.chat.completions.create(
        model="m", messages=user("loop"), tools=[tool("get_weather")]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    second = mock.client.chat.completions.create(
        model="m", messages=user("loop"), tools=[tool("get_weather")]
    )
    assert second.choices[0].message.content == "Sunny."


# -- models -----------------------------------------------------------------------------------

MODELS = """
    version: 1
    scenarios:
      - match: {model: gpt-4o-mini}
        reply: {content: "a"}
      - match: {model: "gpt-4*"}
        reply: {content: "b"}
      - match: {model: o3}
        reply: {content: "c", model: o3-2025-04-16}
      - reply: {content: "d"}
"""


def test_models_list_and_retrieve(live):
    mock = live(MODELS, models=("my-extra", "gpt-4o-mini"))
    listed = [m.id for m in mock.client.models.list()]
    assert listed == ["gpt-4o-mini", "o3", "o3-2025-04-16", "my-extra"]
    model = mock.client.models.retrieve("my-extra")
    assert model.id == "my-extra"
    assert model.object == "model"
    assert type(model.created) is int
    assert mock.client.models.retrieve("o4-mini").id == "o4-mini"  # the last scenario takes any


def test_a_model_no_scenario_answers_is_not_found(live):
    mock = live(MODELS.replace('      - reply: {content: "d"}\n', ""))
    assert mock.client.models.retrieve("gpt-4.1").id == "gpt-4.1"  # the glob "gpt-4*" takes it
    with pytest.raises(openai.NotFoundError) as caught:
        mock.client.models.retrieve("o4-mini")
    assert caught.value.code == "model_not_found"
    assert "o4-mini" in caught.value.message


@pytest.mark.anyio
async def test_models_async(live):
    mock = live(MODELS.replace('      - reply: {content: "d"}\n', ""))
    listed = [m.id async for m in mock.aclient.models.list()]
    assert listed == ["gpt-4o-mini", "o3", "o3-2025-04-16"]
    with pytest.raises(openai.NotFoundError) as caught:
        await mock.aclient.models.retrieve("nope")
    assert caught.value.code == "model_not_found"
    assert caught.value.type == "invalid_request_error"


def test_any_model_name_is_accepted(live):
    mock = live(MODELS)
    reply = mock.client.chat.completions.create(model="not-a-real-model", messages=user("x"))
    assert reply.choices[0].message.content == "d"
    assert reply.model == "not-a-real-model"


# -- no match ---------------------------------------------------------------------------------

NO_MATCH = """
    version: 1
    scenarios:
      - name: greeting
        match: {model: gpt-4o, last_user_message: hello}
        reply: {content: "hi"}
      - name: weather
        match: {tools: [get_weather], last_user_message: {contains: weather}}
        reply: {content: "sunny"}
"""


def test_no_match_names_the_closest_scenario_and_condition(live):
    mock = live(NO_MATCH)
    with pytest.raises(openai.NotFoundError) as caught:
        mock.client.chat.completions.create(model="gpt-4o", messages=user("goodbye"))
    error = caught.value
    assert error.status_code == 404
    assert error.type == "mockserver_no_match"
    assert "'greeting'" in error.message
    assert "test.yaml:" in error.message
    assert "last_user_message" in error.message
    assert "'hello'" in error.message
    assert "'goodbye'" in error.message
    assert len(mock.engine.journal) == 1  # not retried

    with pytest.raises(openai.NotFoundError) as caught:
        mock.client.chat.completions.create(model="m", messages=user("weather please"))
    assert "'weather'" in caught.value.message
    assert "match.tools" in caught.value.message
    assert "get_weather" in caught.value.message


@pytest.mark.anyio
async def test_no_match_on_a_stream_raises_before_streaming(live):
    mock = live(NO_MATCH)
    with pytest.raises(openai.NotFoundError) as caught:
        await mock.aclient.chat.completions.create(
            model="gpt-4o", messages=user("nope"), stream=True
        )
    assert "last_user_message" in caught.value.message


# -- a scripted mid-stream error --------------------------------------------------------------

BROKEN = """
    version: 1
    scenarios:
      - reply:
          content: "This stream fails part of the way through the answer."
          stream:
            interrupt:
              after_chunks: 3
              error: {status: 500, message: "The server had an error while streaming."}
"""


def test_mid_stream_error_raises_api_error(live):
    mock = live(BROKEN)
    stream = mock.client.chat.completions.create(model="m", messages=user("x"), stream=True)
    seen: list = []
    with pytest.raises(openai.APIError) as caught:
        seen.extend(stream)
    assert len(seen) == 3
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "The server had an error while streaming."
    assert caught.value.type == "server_error"
    assert len(mock.engine.journal) == 1  # never retried
