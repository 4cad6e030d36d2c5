"""The journal as the control API shows it: filters (`Query`) and one stable JSON shape per entry.

An entry holds the request body and headers with secrets masked (`recording.scrub`'s secret
headers, and key-shaped strings or those headers' values anywhere in the body), the matched
scenario with its file and line, the reply index and a summary of the reply, the reply as sent
(`sent`: status, headers, and the body or the stream's frames, cut to `journal.SHOWN_REPLY`
bytes), the status, the error, for a miss the closest scenario and the condition it failed, and
the timings the server measured (`journal.Meter`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from mockserver import journal
from mockserver.engine import NO_MATCH, JournalEntry, MockEngine
from mockserver.errors import ApiError
from mockserver.recording.scrub import REDACTED, SECRET_HEADERS, Scrubber, literals_of
from mockserver.scenarios import Scenario

PARAMS = ("session", "all_sessions", "scenario", "status", "unmatched", "since", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Miss(TypedDict):
    closest: str | None
    where: str | None
    condition: str | None
    reason: str | None


def _bad(message: str, param: str) -> ApiError:
    return ApiError(status=400, message=message, param=param, code="invalid_value")


@dataclass(frozen=True, slots=True)
class Query:
    """The journal filters: all given must hold."""

    scenario: str | None = None
    status: int | None = None
    unmatched: bool = False
    since: float | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Query:
        """Read the query parameters; a bad value raises an `ApiError` naming what is allowed."""
        status = params.get("status")
        if status is not None and not (status.isdigit() and 100 <= int(status) <= 599):
            raise _bad(f"status must be an HTTP status 100-599, got {status!r}.", "status")
        unmatched = params.get("unmatched", "false")
        if unmatched not in ("true", "false"):
            raise _bad(f"unmatched must be true or false, got {unmatched!r}.", "unmatched")
        every = params.get("all_sessions", "false")
        if every not in ("true", "false"):
            raise _bad(f"all_sessions must be true or false, got {every!r}.", "all_sessions")
        since = params.get("since")
        when = None
        if since is not None:
            try:
                when = float(since)
            except ValueError:
                when = math.nan
            if not math.isfinite(when):
                raise _bad(
                    f"since must be a time in seconds since the epoch (an entry's `at`), "
                    f"got {since!r}.",
                    "since",
                )
        limit = params.get("limit", str(DEFAULT_LIMIT))
        if not (limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT):
            raise _bad(f"limit must be a number from 1 to {MAX_LIMIT}, got {limit!r}.", "limit")
        return cls(
            scenario=params.get("scenario"),
            status=int(status) if status is not None else None,
            unmatched=unmatched == "true",
            since=when,
            limit=int(limit),
        )

    def holds(self, entry: JournalEntry) -> bool:
        if self.scenario is not None and entry.scenario != self.scenario:
            return False
        if self.status is not None and entry.status != self.status:
            return False
        if self.unmatched and not is_miss(entry):
            return False
        return self.since is None or entry.at > self.since


def is_miss(entry: JournalEntry) -> bool:
    return entry.error is not None and entry.error.type == NO_MATCH


def entries(sources: Sequence[tuple[str | None, MockEngine]], query: Query) -> list[Any]:
    """The entries of the given (session, engine) journals that `query` selects, oldest first
    (the newest `limit` of them)."""
    found = []
    for session, engine in sources:
        for entry in reversed(engine.journal):  # newest first: a poll with `since` stops early
            if query.since is not None and entry.at <= query.since:
                break
            if query.holds(entry):
                found.append((entry.at, session, engine, entry))
    found.sort(key=lambda item: item[0])
    chosen = found[-query.limit :]
    index = {id(engine): _by_name(engine) for _, engine in sources}
    return [render(e, s, engine, index[id(engine)]) for _, s, engine, e in chosen]


def _by_name(engine: MockEngine) -> dict[str, Scenario]:
    return {s.name: s for s in engine.scenarios.scenarios}


def mask_headers(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in SECRET_HEADERS:
            scheme, _, token = value.partition(" ")
            value = f"{scheme} {REDACTED}" if token else REDACTED
        shown[name] = value
    return shown


def render(
    entry: JournalEntry,
    session: str | None,
    engine: MockEngine,
    scenarios: Mapping[str, Scenario],
) -> dict[str, Any]:
    """One entry's JSON (the shape the README documents)."""
    scrubber = Scrubber()
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in entry.headers]
    scrubber.remember(literals_of(pairs))
    scenario = scenarios.get(entry.scenario) if entry.scenario else None
    reply: dict[str, Any] | None = None
    delay_ms = 0.0
    if scenario is not None and entry.reply_index is not None:
        chosen = scenario.replies[min(entry.reply_index, len(scenario.replies) - 1)]
        delay_ms = chosen.delay_ms
        reply = {
            "content": [c.content for c in chosen.choices],
            "tool_calls": [t.name for c in chosen.choices for t in (c.tool_calls or ())],
            "error_status": chosen.error.status if chosen.error else None,
            "recorded": chosen.raw is not None,
        }
    miss: Miss | None = None
    if is_miss(entry) and entry.request is not None:
        closest, condition, reason = engine.explain_miss(entry.request)
        key = "match." + condition.rsplit("match.", 1)[-1] if condition else None
        miss = {
            "closest": closest.name if closest else None,
            "where": closest.where if closest else None,
            "condition": key,
            "reason": scrubber.text(reason) if reason else None,
        }
    return {
        "session": session,
        "at": entry.at,
        "time": datetime.fromtimestamp(entry.at, UTC).isoformat(timespec="milliseconds"),
        "status": entry.status,
        "scenario": entry.scenario,
        "where": scenario.where if scenario else None,
        "reply_index": entry.reply_index,
        "reply": reply,
        "request": scrubber.tree(_cut(journal.shown(entry.raw))) if entry.raw else None,
        "headers": mask_headers(entry.headers),
        "unknown_fields": engine.unknown_fields(entry),
        "error": scrubber.tree(entry.error.body()["error"]) if entry.error else None,
        "miss": miss,
        "timings": timings(entry, delay_ms),
        "sent": sent(entry.meter, scrubber),
        "api": entry.api,
        "profile": entry.profile,
        "fault": entry.fault,
        "notes": list(entry.notes),
        **({"request_omitted_bytes": entry.omitted} if entry.omitted else {}),
    }


def _ms(start: float, then: float | None) -> float | None:
    return None if then is None else round((then - start) * 1000, 3)


def timings(entry: JournalEntry, delay_ms: float) -> dict[str, Any]:
    """When the request came and was answered (wall clock), and what the server measured from
    its arrival: to the first body byte and to the last (or to the client leaving). The
    measured values are null while a reply is still being sent."""
    meter = entry.meter
    done = meter is not None and meter.end is not None
    return {
        "received_at": meter.received if meter else None,
        "answered_at": entry.at,
        "delay_ms": delay_ms,
        "first_byte_ms": _ms(meter.start, meter.first) if meter and done else None,
        "total_ms": _ms(meter.start, meter.end) if meter and done else None,
        "client_gone": meter.gone if meter and done else False,
    }


def sent(meter: journal.Meter | None, scrubber: Scrubber) -> dict[str, Any] | None:
    """The reply as the server sent it, cut to `journal.SHOWN_REPLY` bytes with a note."""
    if meter is None or meter.shown is None:
        return None
    shown = meter.shown
    body = frames = None
    if isinstance(shown, bytes):
        body = scrubber.text(shown.decode("utf-8", "replace"))
        kept = len(shown)
    else:
        frames = [
            {
                "delay_ms": round(f.delay * 1000, 3),
                "data": scrubber.text(f.data.decode("utf-8", "replace")),
            }
            for f in shown
        ]
        kept = sum(len(f.data) for f in shown)
    cut = meter.size - kept
    return {
        "status": meter.status,
        "headers": mask_headers(meter.headers),
        "bytes": meter.size,
        "body": body,
        "frames": frames,
        "cut_bytes": cut,
        "note": f"{cut} more bytes not shown (the journal keeps {journal.SHOWN_REPLY} bytes "
        "of a reply)"
        if cut
        else None,
    }


SHOWN_STRING = journal.SHOWN_REPLY
"""Strings in a journaled body longer than this are shown cut (a base64 image of tens of
megabytes is not something to read, and scrubbing it for secrets took over a second)."""


def _cut(value: Any) -> Any:
    """`value` with every string over `SHOWN_STRING` characters cut, saying how much was left
    out."""
    if isinstance(value, str):
        if len(value) <= SHOWN_STRING:
            return value
        return f"{value[:SHOWN_STRING]}...[{len(value) - SHOWN_STRING} more characters]"
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encoded(
    sources: Sequence[tuple[str | None, MockEngine]], query: Query, dropped: int, budget: int
) -> bytes:
    """`GET /_mockserver/journal` as bytes: run in a worker thread, and each entry encoded on
    its own, so that the JSON encoder never holds the interpreter longer than its largest
    entry takes (bodies of tens of megabytes are kept up to the journal's byte budget)."""
    pieces = [_encode(entry) for entry in entries(sources, query)]
    head = f'{{"object":"list","dropped":{dropped},"budget_bytes":{budget},"data":['
    return (head + ",".join(pieces) + "]}").encode()
