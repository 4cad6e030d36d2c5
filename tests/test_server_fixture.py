"""`BackgroundServer`: fast start and stop, idle and busy connections, swapping the app."""

import threading
import time

import httpx2
import pytest

from mockserver.app import create_app
from mockserver.engine import EngineConfig, MockEngine
from mockserver.scenarios import ScenarioSet, load_text
from mockserver.server import BackgroundServer

EMPTY = ScenarioSet()
SLOW = load_text(
    """
version: 1
scenarios:
  - name: slow
    reply:
      content: "a b c d e f"
      stream: {chunk_size: 2, chunk_delay_ms: 200}
"""
)


def _app(scenarios=EMPTY):
    return create_app(MockEngine(scenarios, EngineConfig(seed=1)))


def test_start_serve_stop_quickly_with_an_idle_keep_alive_connection():
    starts, stops = [], []
    for _ in range(3):  # the best of three: the machine may be busy with other work
        server = BackgroundServer(_app())
        started = time.perf_counter()
        server.start()
        starts.append(time.perf_counter() - started)
        with httpx2.Client() as client:
            assert client.get(server.url + "/models").status_code == 200
            stopping = time.perf_counter()
            server.stop()  # the client still holds its keep-alive connection open
            stops.append(time.perf_counter() - stopping)
            assert not server.running
            with pytest.raises(httpx2.TransportError):
                client.get(server.url + "/models")
    assert min(starts) < 0.05
    assert min(stops) < 0.05, "uvicorn's own shutdown() sleeps 0.1 s"


def test_stop_twice_and_context_manager():
    with BackgroundServer(_app()) as server:
        assert server.running
    server.stop()
    assert not server.running


def test_a_server_starts_only_once():
    with BackgroundServer(_app()) as server, pytest.raises(RuntimeError, match="started already"):
        server.start()


def test_swapping_the_app_changes_what_answers():
    first = load_text("version: 1\nscenarios:\n  - reply: {content: one}\n")
    second = load_text("version: 1\nscenarios:\n  - reply: {content: two}\n")
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with BackgroundServer(_app(first)) as server, httpx2.Client() as client:
        url = server.url + "/chat/completions"
        assert client.post(url, json=body).json()["choices"][0]["message"]["content"] == "one"
        server.app = _app(second)
        assert client.post(url, json=body).json()["choices"][0]["message"]["content"] == "two"


def test_stop_cuts_a_stream_still_being_written_after_the_grace_period():
    server = BackgroundServer(_app(SLOW), grace=0.1).start()
    received: list[bytes] = []
    failed: list[BaseException] = []
    reading = threading.Event()

    def read() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
        try:
            with (
                httpx2.Client() as client,
                client.stream("POST", server.url + "/chat/completions", json=body) as response,
            ):
                for chunk in response.iter_raw():
                    received.append(chunk)
                    reading.set()
        except httpx2.HTTPError as exc:
            failed.append(exc)
        finally:
            reading.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(5)
    stopping = time.perf_counter()
    server.stop()
    took = time.perf_counter() - stopping
    reader.join(5)
    assert 0.05 < took < 1.0
    assert failed, "the unfinished stream should end with a transport error"
    assert b"[DONE]" not in b"".join(received)
