"""Writing recorded exchanges into scenario files that `mockserver serve` replays.

Each exchange becomes a scenario: a `match:` derived from the request (`match_on`) and a
`raw:` reply holding the response as it was (status, the useful headers, the body as a block
of text or the stream's events with their timing, and `end: abort` for a broken stream). An
exchange whose request matches a scenario of the file exactly is appended to its `sequence`.

Every write goes through one path: the whole document is scrubbed (`Scrubber`), rendered,
checked (it loads as scenarios, it holds no secret), and written atomically (a temporary
file in the same folder, fsync, `os.replace`) under a lock per file. A file that is not a
scenario file is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

try:
    import fcntl

    _FLOCK: Callable[[int, int], None] | None = fcntl.flock
except ImportError:  # pragma: no cover - Windows
    _FLOCK = None

from mockserver import profiles
from mockserver.errors import ApiError, ScenarioError
from mockserver.recording.exchange import Exchange, kept_headers
from mockserver.recording.match_on import (
    DEFAULT,
    derive_match,
    derive_responses_match,
    responses_view,
)
from mockserver.recording.responses import (
    Conversations,
    NotReplyKeys,
    UnknownConversation,
    reply_keys,
    response_of,
)
from mockserver.recording.scrub import Scrubber
from mockserver.scenarios import VERSION, duplicate_names, read_document
from mockserver.yamlsource import load_data, parse_yaml

Update = Literal["append", "replace", "fresh"]
"""How recording into an existing file goes: `append` to it; `replace` the scenarios this
session records again, keeping the others (vcrpy's `all`); or start the file `fresh`."""

HEADER = """\
# {origin}.
# `mockserver serve` replays it; edit freely (recording into this file again rewrites it,
# without comments). Secrets were scrubbed before writing.
"""


class RecordingError(Exception):
    """An exchange that cannot be written (the reason says why); nothing was written."""


@dataclass(frozen=True, slots=True)
class Written:
    """Where an exchange went: the file, the scenario, and its reply's position in it."""

    path: Path
    scenario: str
    reply: int
    mapping: dict[str, Any]
    """The scenario as written (scrubbed), with only this exchange's reply."""
    live: dict[str, Any] | None = None
    """The reply that answers the recorded request now, when it is not the one written: a
    Responses reply's upstream response (`raw`, scrubbed), whose ids the upstream knows when
    the client continues from it."""


# -- rendering ------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text, indented lists: files a person can read and edit."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


class Block(str):
    """Text written as a block scalar even on one line (a body: no quotes to escape)."""

    __slots__ = ()


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    block = isinstance(value, Block) or "\n" in value.rstrip("\n") or value.endswith("\n")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if block else None)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(Block, _str)


def _blocks(document: dict[str, Any]) -> None:
    """Mark every raw reply's body as a `Block` (after scrubbing, which makes plain strings)."""
    for scenario in document.get("scenarios") or []:
        if not isinstance(scenario, dict):
            continue
        for reply in _replies(scenario):
            raw = reply.get("raw") if isinstance(reply, dict) else None
            if isinstance(raw, dict) and isinstance(raw.get("body"), str):
                raw["body"] = Block(raw["body"])


def render(document: dict[str, Any], comment: str = "", *, blocks: bool = True) -> str:
    """YAML text for a document: multi-line strings as block scalars, unless `blocks` is off
    (a block scalar cannot hold every string exactly: `_save` checks, and quotes instead)."""
    options: dict[str, Any] = {
        "sort_keys": False,
        "allow_unicode": True,
        "width": 1_000_000,
        "default_flow_style": False,
    }
    dumper = _Dumper if blocks else yaml.SafeDumper
    text: str = yaml.dump(document, Dumper=dumper, **options)
    return comment + text


def _text(data: bytes) -> str:
    """A body as text; bytes that are not UTF-8 become U+DC80..U+DCFF, which YAML writes as
    `\\uDCxx` escapes and a replay writes back as the same bytes."""
    return data.decode("utf-8", errors="surrogateescape")


def _number(ms: float) -> float | int:
    return int(ms) if float(ms).is_integer() else round(ms, 1)


def raw_reply(exchange: Exchange) -> dict[str, Any]:
    """The `raw:` mapping replaying this exchange's response."""
    raw: dict[str, Any] = {"status": exchange.status}
    headers = kept_headers(exchange.headers)
    if headers:
        raw["headers"] = dict(headers)
    if exchange.events is not None:
        events: list[dict[str, Any]] = []
        for event in exchange.events:
            item: dict[str, Any] = {"data": event.data}
            if event.event is not None:
                item["event"] = event.event
            if event.delay_ms:
                item["delay_ms"] = _number(event.delay_ms)
            events.append(item)
        raw["events"] = events
        if exchange.end == "abort":
            raw["end"] = "abort"
    else:
        raw["body"] = _text(exchange.body or b"")
    return {"raw": raw}


# -- naming ---------------------------------------------------------------------------------


def _slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "chat"


def conversation_name(body: dict[str, Any]) -> str:
    """A file name for the conversation a request belongs to (its body already scrubbed): the
    first user message, slugged, and a hash of the model and the messages up to it (so every
    turn of it lands in one file)."""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    opening: list[Any] = []
    first_user = ""
    for message in messages or []:
        opening.append(message)
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            first_user = content if isinstance(content, str) else json.dumps(content)
            break
    key = json.dumps([body.get("model"), opening], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{_slug(first_user or str(body.get('model', '')))}-{digest}.yaml"


def match_key(match: Any) -> str:
    return json.dumps(match, sort_keys=True, ensure_ascii=False)


# -- files ----------------------------------------------------------------------------------


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold `path` for a read-modify-write: a lock per file among this process's threads, and
    an advisory lock on its folder among processes (two recorders, pytest-xdist workers)."""
    key = str(path.resolve())
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        if _FLOCK is None:  # pragma: no cover - Windows: threads only
            yield
            return
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            _FLOCK(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the flock


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers (and a crash) see the old file or the new one.

    The temporary file is hidden and ends in `.tmp`: a scenario folder never loads it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(folder)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(folder)


def _read(path: Path) -> dict[str, Any]:
    """An existing scenario file's data, or a new document."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": VERSION, "scenarios": []}
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc
    try:
        data = load_data(text)
    except yaml.YAMLError as exc:
        raise RecordingError(f"{path} is not valid YAML, not touching it: {exc}") from exc
    if data is None:
        return {"version": VERSION, "scenarios": []}
    if not isinstance(data, dict) or not isinstance(data.get("scenarios", []), list):
        raise RecordingError(
            f"{path} is not a scenario file (no `scenarios:` list), not touching it"
        )
    data.setdefault("scenarios", [])
    return data


def _replies(scenario: dict[str, Any]) -> list[Any]:
    if "sequence" in scenario and isinstance(scenario["sequence"], list):
        return list(scenario["sequence"])
    return [scenario["reply"]] if "reply" in scenario else []


def _set_replies(scenario: dict[str, Any], replies: list[Any]) -> None:
    scenario.pop("reply", None)
    scenario.pop("sequence", None)
    after = scenario.pop("after", None)
    if len(replies) == 1:
        scenario["reply"] = replies[0]
    else:
        scenario["sequence"] = replies
        if after is not None:
            scenario["after"] = after


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writer:
    """Writes exchanges into scenario files: one file per conversation under a folder, or all
    into one file (a test's cassette). Safe to call from many threads."""

    def __init__(
        self,
        target: Path,
        *,
        one_file: bool = False,
        scrubber: Scrubber | None = None,
        match_on: Iterable[str] = DEFAULT,
        update: Update = "append",
        origin: str = "Recorded by mockserver",
        clock: Callable[[], float] = time.time,
        profile: str | None = None,
        responses_reply_keys: bool = False,
    ) -> None:
        self.target = target
        self.one_file = one_file
        self.scrubber = scrubber or Scrubber()
        self.match_on = tuple(match_on)
        self.update: Update = update
        self.origin = origin
        self._clock = clock
        self.profile = profile
        """`profile:` for the files written: given, or what the upstream shows (vLLM's)."""
        self.responses_reply_keys = responses_reply_keys
        """Write a Responses reply as reply keys (fresh ids, streamed or not as the replaying
        request asks) rather than `raw` (the upstream's bytes, replayed exactly, as chat's)."""
        self._touched: set[tuple[str, str]] = set()
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self.written: list[Written] = []
        """Every exchange written so far (without its mapping)."""
        self.conversations = Conversations()
        """The Responses conversations recorded, for the requests continuing them."""

    def path_for(self, body: dict[str, Any]) -> Path:
        """The file for a request (its body already scrubbed)."""
        if self.one_file:
            return self.target
        return self.target / conversation_name(body)

    def write(self, exchange: Exchange, *, live: bool = False) -> Written:
        """Add one exchange to its file (raises `RecordingError` when it cannot be written);
        with `live`, say in `Written.live` how to answer it now if not with what was written."""
        body = exchange.request_json()
        if body is None:
            raise RecordingError("the request body is not a JSON object; not recorded")
        now: dict[str, Any] | None = None
        if exchange.api == "responses":
            match, reply, now, naming = self._responses(exchange, body)
        else:
            match, reply, naming = derive_match(body, self.match_on), raw_reply(exchange), body
        if not live or now is reply:
            now = None  # the upstream's bytes are scrubbed a second time only when needed
        naming, match, reply, now = self.scrubber.exchange(
            _secret_headers(exchange), naming, match, reply, now or {}
        )
        path = self.path_for(naming)
        texts: list[bytes | str] = [exchange.body or b"", *(e.data for e in exchange.events or ())]
        profile = self.profile or profiles.spoken_by(texts)
        with file_lock(path):
            written = self._add(path, match, reply, profile)
        with self._lock:  # a long session keeps no bodies
            self.written.append(replace(written, mapping={}))
        return replace(written, live=now or None)

    def _responses(
        self, exchange: Exchange, body: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A Responses exchange's match (the conversation as the server reads it), its reply
        (reply keys, else `raw`), the reply answering it live (`raw`), and what names its file."""
        try:
            history = self.conversations.history(body)
            view = responses_view(body, history)
        except UnknownConversation as exc:
            raise RecordingError(str(exc)) from None
        except ApiError as exc:
            raise RecordingError(
                f"the request is one mockserver refuses ({exc.message}); not recorded"
            ) from None
        match = derive_responses_match(body, view, self.match_on)
        raw = raw_reply(exchange)
        reply = raw
        response = response_of(exchange)
        if response is not None:
            self.conversations.remember(history, body, response)
            if self.responses_reply_keys:
                with contextlib.suppress(NotReplyKeys):
                    reply = reply_keys(response, body)
        naming = {"model": view.model, "messages": view.chat_messages}
        return match, reply, raw, naming

    def _add(
        self, path: Path, match: dict[str, Any], reply: dict[str, Any], profile: str | None
    ) -> Written:
        key = str(path.resolve())
        with self._lock:
            fresh = self.update == "fresh" and key not in self._started
            self._started.add(key)
        document = {"version": VERSION, "scenarios": []} if fresh else _read(path)
        scenarios = document["scenarios"]
        assert isinstance(scenarios, list)
        wanted = match_key(match)
        found = next(
            (
                s
                for s in scenarios
                if isinstance(s, dict) and match_key(s.get("match", {})) == wanted
            ),
            None,
        )
        with self._lock:
            replace = self.update == "replace" and (key, wanted) not in self._touched
            self._touched.add((key, wanted))
        if found is None:
            found = {"name": _free_name(path.stem, scenarios), "match": match, "reply": reply}
            scenarios.append(found)
            index = 0
        else:
            replies = [] if replace else _replies(found)
            replies.append(reply)
            _set_replies(found, replies)
            index = len(replies) - 1
        document = self._document(document, profile)
        self._save(path, document)
        name = str(found.get("name", path.stem))
        return Written(path, name, index, {"name": name, "match": match, "reply": reply})

    def _document(self, document: dict[str, Any], profile: str | None) -> dict[str, Any]:
        """Version, recording time (and profile) first, then everything else the file had."""
        ordered: dict[str, Any] = {
            "version": VERSION,
            "recorded_at": _timestamp(self._clock()),
        }
        if profile is not None:
            ordered["profile"] = profile
        ordered.update((k, v) for k, v in document.items() if k not in ordered)
        scrubbed: dict[str, Any] = self.scrubber.tree(ordered)
        _blocks(scrubbed)
        return scrubbed

    def _save(self, path: Path, document: dict[str, Any]) -> None:
        origin = " ".join(self.scrubber.text(self.origin).split())
        header = HEADER.format(origin=origin)
        text = render(document, header)
        root, doc = parse_yaml(text, str(path))  # the one read of what is written
        if root is not None and root.value != document:  # a block scalar changed a string
            text = render(document, header, blocks=False)
            root, doc = parse_yaml(text, str(path))
        leaks = self.scrubber.check(text)
        if leaks:
            raise RecordingError(f"refusing to write {path}: it would hold {', '.join(leaks)}")
        scenarios = read_document(root, path.parent) if root is not None else []
        problems = (*doc.problems, *duplicate_names(scenarios))
        if problems:
            error = ScenarioError(problems)
            raise RecordingError(f"refusing to write {path}, it would not load:\n{error}")
        write_atomically(path, text)


def _secret_headers(exchange: Exchange) -> tuple[tuple[str, str], ...]:
    """The headers whose values are secrets: every credential the request carried, and the
    cookies the response set (its organisation and project headers are not recorded at all)."""
    cookies = [(k, v) for k, v in exchange.headers if k.lower() == "set-cookie"]
    return (*exchange.request_headers, *cookies)


def _free_name(stem: str, scenarios: list[Any]) -> str:
    taken = {s.get("name") for s in scenarios if isinstance(s, dict)}
    n = len(scenarios) + 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"
