"""The journal page at /_mockserver/ in a real browser: headless Chromium driven by Playwright.

Debian's `chromium` package is the browser (`.ci/run` installs it). On a developer machine
without it these tests skip, saying so; in CI (`CI=true`) a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.control import Admin
from mockserver.engine import MockEngine
from mockserver.scenarios import load_text
from mockserver.server import BackgroundServer
from tests.test_control import SHARED

CHROMIUM = os.environ.get("MOCKSERVER_CHROMIUM") or shutil.which("chromium")
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true but no chromium: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on this machine (apt-get install chromium); CI runs these")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra brings it
        if IN_CI:
            raise
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], timeout=30_000
        )
        yield browser
        browser.close()


@pytest.fixture
def server() -> Iterator[tuple[str, httpx.Client]]:
    engine = MockEngine(load_text(textwrap.dedent(SHARED), "shared.yaml"))
    with BackgroundServer(create_app(engine)) as running, httpx.Client(timeout=10) as http:
        yield running.url.removesuffix("/v1"), http


def chat(http: httpx.Client, root: str, text: str, session: str | None = None) -> int:
    headers = {"x-mockserver-session": session} if session else {}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
    return http.post(f"{root}/v1/chat/completions", json=body, headers=headers).status_code


def test_the_page_shows_requests_live_explains_a_miss_filters_and_resets(browser, server):
    from playwright.sync_api import expect

    root, http = server
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{root}/_mockserver/")
    page.wait_for_selector("#state:has-text('0 requests')")

    assert chat(http, root, "hello", session="alice") == 200
    assert chat(http, root, "what is the weather") == 404
    expect(page.locator("#entries li")).to_have_count(2, timeout=10_000)
    rows = page.locator("#entries li")
    assert rows.nth(0).get_attribute("class") == "miss"  # newest first
    assert "greet" in rows.nth(1).inner_text()
    assert "shared.yaml:4" in rows.nth(1).inner_text()

    # keyboard only: j moves to the newest request, Enter opens it
    page.locator("body").press("j")
    page.keyboard.press("Enter")
    failed = rows.nth(0).locator(".failed")
    failed.wait_for()
    assert "failed match.last_user_message" in failed.inner_text()
    assert "what is the weather" in rows.nth(0).locator("pre.request mark").inner_text()

    # filter by session, once the page has seen it
    page.wait_for_selector("#session option[value='alice']", state="attached")
    page.select_option("#session", "alice")
    assert page.locator("#entries li").count() == 1
    assert "session alice" in page.locator("#entries li").inner_text()
    page.select_option("#session", "*")
    page.select_option("#status", "miss")
    assert page.locator("#entries li").count() == 1
    page.select_option("#status", "")

    if shot := os.environ.get("MOCKSERVER_SCREENSHOT"):  # how docs/journal-page.png is made
        page.screenshot(path=str(Path(shot)))
    page.click("#reset")
    page.wait_for_selector("#state:has-text('Reset everything')")
    expect(page.locator("#entries li")).to_have_count(0)
    assert http.get(f"{root}/_mockserver/journal").json()["data"] == []
    assert chat(http, root, "hello") == 200
    expect(page.locator("#entries li")).to_have_count(1, timeout=10_000)
    assert errors == []
    page.close()


def test_the_page_asks_for_the_admin_token(browser):
    engine = MockEngine(load_text(textwrap.dedent(SHARED), "shared.yaml"))
    app = create_app(engine, Admin(token="let-me-in"))
    with BackgroundServer(app) as running:
        root = running.url.removesuffix("/v1")
        page = browser.new_page()
        page.goto(f"{root}/_mockserver/")
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#token", "let-me-in")
        page.press("#token", "Enter")
        page.wait_for_selector("#state:has-text('0 requests')")
        page.close()


SENT = """
version: 1
scenarios:
  - name: plain
    match: {last_user_message: {contains: plain}}
    reply: {content: Hi there}
  - name: paced
    match: {last_user_message: {contains: paced}}
    reply:
      content: one two three
      stream: {first_chunk_delay_ms: 400, chunk_delay_ms: 400}
  - name: big
    match: {last_user_message: {contains: big}}
    reply: {content: LONG}
"""


def test_the_page_shows_the_reply_as_sent_and_measured_timings(browser):
    """The reply's bytes as sent (status, headers, body; a stream's frames with their waits; a
    long one cut with a note), and the timings measured, updated once a stream has ended."""
    import threading

    from playwright.sync_api import expect

    text = textwrap.dedent(SENT).replace("LONG", "word " * 20_000)
    engine = MockEngine(load_text(text, "sent.yaml"))
    with BackgroundServer(create_app(engine)) as running, httpx.Client(timeout=10) as http:
        root = running.url.removesuffix("/v1")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{root}/_mockserver/")
        page.wait_for_selector("#state:has-text('0 requests')")
        assert chat(http, root, "plain") == 200
        rows = page.locator("#entries li")
        expect(rows).to_have_count(1, timeout=10_000)
        rows.nth(0).locator("summary").click()
        sent = rows.nth(0).locator("pre.sent")
        expect(sent).to_contain_text("HTTP 200")
        expect(sent).to_contain_text("content-type: application/json")
        expect(sent).to_contain_text('"content": "Hi there"')
        expect(rows.nth(0).locator(".timings")).to_contain_text("last byte after")

        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "paced"}]}
        streamed: list[bytes] = []
        reader = threading.Thread(
            target=lambda: streamed.append(
                http.post(f"{root}/v1/chat/completions", json=body).content
            )
        )
        reader.start()
        expect(rows).to_have_count(2, timeout=10_000)
        newest = page.locator("#entries li").nth(0)
        newest.locator("summary").click()
        expect(newest.locator(".timings")).to_contain_text("still sending")
        reader.join(timeout=10)
        # the page fetches the entry again once the stream ended, and shows it whole
        newest = page.locator("#entries li").nth(0)
        expect(newest.locator(".timings")).to_contain_text("last byte after", timeout=10_000)
        frames = newest.locator("pre.sent")
        expect(frames).to_contain_text("content-type: text/event-stream")
        expect(frames).to_contain_text("+400 ms")
        expect(frames).to_contain_text("data: [DONE]")
        assert streamed and streamed[0].endswith(b"data: [DONE]\n\n")

        assert chat(http, root, "big") == 200
        expect(rows).to_have_count(3, timeout=10_000)
        page.locator("#entries li").nth(0).locator("summary").click()
        expect(page.locator("#entries li").nth(0).locator(".note")).to_contain_text(
            "more bytes not shown (the journal keeps 65536 bytes of a reply)"
        )
        assert errors == []
        page.close()
