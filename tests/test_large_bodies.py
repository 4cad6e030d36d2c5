"""Large bodies are decoded in short steps (long strings cut out first): the same values and
the same refusals as one call of the JSON decoder, and other requests answered meanwhile."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.validation import reading
from mockserver.validation.reading import _decode_large

texts = st.text(alphabet=st.sampled_from('ab"\\\n\x01é/ '), max_size=12)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(values, st.sampled_from(["", " ", "x", '"', "\\", "]", "}"]))
def test_the_same_values_and_refusals_as_the_decoder(value, noise):
    text = json.dumps(value, ensure_ascii=False)
    for candidate in (text, text[: len(text) // 2] + noise + text[len(text) // 2 :]):
        original = reading.LONG_STRING
        reading.LONG_STRING = 2  # every string of 2 characters and more is cut out
        try:
            try:
                expected = json.loads(candidate)
            except ValueError:
                with pytest.raises(ValueError):  # noqa: PT011 - any of the decoder's errors
                    _decode_large(candidate.encode())
                continue
            assert _decode_large(candidate.encode()) == expected
        finally:
            reading.LONG_STRING = original


def test_health_answers_promptly_while_a_60_mb_image_body_is_read(live):
    """A 60 MB base64 image in one request: the JSON decoder never holds the server long."""
    server = live("scenarios:\n  - reply: {content: seen}\n")
    image = "data:image/png;base64," + "A" * (60 * 1024 * 1024)
    body = json.dumps(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what?"},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                }
            ],
        }
    ).encode()
    root = server.url.removesuffix("/v1")
    waits: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set():
                began = time.perf_counter()
                client.get(root + "/health")
                waits.append(time.perf_counter() - began)
                time.sleep(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        response = httpx.post(
            server.url + "/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
    finally:
        done.set()
        poller.join(10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "seen"
    waits.sort()
    assert waits and waits[len(waits) // 2] < 0.02, waits[-5:]
    assert waits[-1] < 0.25, waits[-5:]  # the worst poll, on a machine shared with the test run
