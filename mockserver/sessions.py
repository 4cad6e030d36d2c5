"""Sessions: isolated state for clients sharing one server (`x-mockserver-session: NAME`).

A session is an engine forked from the shared one (`MockEngine.fork`): it serves the shared
scenarios plus those added for it (tried first: at one priority a session's own scenario wins
over a shared one), with its own sequence positions and journal. Sessions are
created on first use and bounded: at most `limit` of them (the least recently used is dropped),
each with a journal of at most `SESSION_JOURNAL_SIZE` entries and at most
`MAX_SESSION_SCENARIO_BYTES` of scenario text added. Requests without a session never come here.
When the shared scenarios change, a session is rebuilt over them on its next use, keeping its
journal and, by name, its sequence positions (a scenario of its own whose name the shared set
now uses gives way to the shared one).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from mockserver.engine import MockEngine
from mockserver.errors import ApiError, Problem
from mockserver.scenarios import Scenario, ScenarioSet

SESSION_HEADER = b"x-mockserver-session"
SESSION_PREFIX = "/_mockserver/sessions/"
DEFAULT_MAX_SESSIONS = 100
SESSION_JOURNAL_SIZE = 1000
MAX_SESSION_SCENARIO_BYTES = 4 * 1024 * 1024
API_TAILS = ("v1/", "chat/", "models")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_name(name: str) -> str:
    """`name` if it is a valid session name, else an `ApiError` saying what one looks like."""
    if _NAME.fullmatch(name):
        return name
    raise ApiError(
        status=400,
        message=(
            f"Invalid session name {name[:80]!r}: expected 1 to 128 letters, digits and "
            "`.`, `_`, `:` or `-`, starting with a letter or digit."
        ),
        param="session",
        code="invalid_session",
    )


def split_session_path(path: str) -> tuple[str, str] | None:
    """`/_mockserver/sessions/NAME/v1/...` -> (NAME, `/v1/...`), or None for other paths."""
    if not path.startswith(SESSION_PREFIX):
        return None
    name, _, tail = path[len(SESSION_PREFIX) :].partition("/")
    if not name or not tail.startswith(API_TAILS):
        return None
    return name, "/" + tail


@dataclass
class Session:
    """One session's engine, the shared set it was built over, and what was added to it."""

    engine: MockEngine
    base: ScenarioSet
    added: tuple[Scenario, ...] = ()
    added_bytes: int = 0
    pinned: bool = False
    """An engine given whole (`install`: the pytest fixture's): never rebuilt."""


class Sessions:
    """The sessions of one server, least recently used first."""

    def __init__(self, shared: MockEngine, limit: int = DEFAULT_MAX_SESSIONS) -> None:
        if limit < 1:
            raise ValueError(f"the session limit must be at least 1, got {limit}")
        self.shared = shared
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.RLock()  # a worker thread may serve a big body meanwhile
        journal = min(shared.config.journal_size, SESSION_JOURNAL_SIZE)
        self._config = replace(shared.config, journal_size=journal)

    def __len__(self) -> int:
        return len(self._sessions)

    def names(self) -> list[str]:
        """Session names, most recently used first."""
        with self._lock:
            return list(reversed(self._sessions))

    def engine(self, name: str) -> MockEngine:
        """The session's engine, creating the session on first use (`name` already checked)."""
        with self._lock:
            return self._session(name).engine

    def find(self, name: str) -> MockEngine | None:
        """The session's engine if it exists (reading a journal creates no session)."""
        with self._lock:
            session = self._sessions.get(name)
            return None if session is None else self._fresh(session).engine

    def _session(self, name: str) -> Session:
        """The session (created on first use), fresh; the caller holds the lock."""
        session = self._sessions.get(name)
        if session is None:
            session = Session(self.shared.fork(self._config), self.shared.scenarios)
            self._sessions[name] = session
            while len(self._sessions) > self.limit:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(name)
        return self._fresh(session)

    def _fresh(self, session: Session) -> Session:
        """The session, rebuilt first if the shared scenarios changed since it was built."""
        if session.base is not self.shared.scenarios and not session.pinned:
            base = self.shared.scenarios
            taken = {s.name for s in base.scenarios}
            self._rebuild(session, base, tuple(s for s in session.added if s.name not in taken))
        return session

    def _rebuild(self, session: Session, base: ScenarioSet, added: tuple[Scenario, ...]) -> None:
        if session.pinned:
            raise ApiError(
                status=409,
                message="This session is a running pytest test's (mockserver_server): its "
                "scenarios can be added to, not replaced or removed.",
                code="session_pinned",
            )
        engine = self.shared.fork(self._config)
        engine.replace_scenarios(ScenarioSet(added).extend(base))
        engine.take_state(session.engine)
        session.engine, session.base, session.added = engine, base, added

    def install(self, name: str, engine: MockEngine) -> None:
        """Serve the session `name` with `engine` itself (the pytest `mockserver_server`
        fixture gives each test's own engine a session); counts toward the limit."""
        with self._lock:
            self._sessions[name] = Session(engine, self.shared.scenarios, pinned=True)
            self._sessions.move_to_end(name)
            while len(self._sessions) > self.limit:
                self._sessions.popitem(last=False)

    def drop(self, name: str) -> None:
        """Forget a session entirely (its scenarios too)."""
        with self._lock:
            self._sessions.pop(name, None)

    def add(self, name: str, scenarios: ScenarioSet, size: int) -> None:
        """Add scenarios to a session; raises `ScenarioError` (names in use) or `ApiError`
        (over `MAX_SESSION_SCENARIO_BYTES`), adding nothing."""
        with self._lock:
            session = self._session(name)
            if session.added_bytes + size > MAX_SESSION_SCENARIO_BYTES:
                raise ApiError(
                    status=413,
                    message=(
                        f"Session {name!r} would hold {session.added_bytes + size} bytes of added "
                        f"scenarios, more than the {MAX_SESSION_SCENARIO_BYTES} bytes a session "
                        "may hold; replace them (PUT) or reset the server."
                    ),
                    code="session_too_large",
                )
            if session.pinned:
                session.engine.add_scenarios(scenarios.scenarios)
                session.added = (*session.added, *scenarios.scenarios)
            else:  # raises ScenarioError on a name in use
                self._rebuild(session, session.base, (*session.added, *scenarios.scenarios))
            session.added_bytes += size

    def replace(self, name: str, scenarios: ScenarioSet, size: int) -> None:
        """Make `scenarios` the session's own (on top of the shared ones)."""
        with self._lock:
            session = self._session(name)
            if size > MAX_SESSION_SCENARIO_BYTES:
                raise ApiError(
                    status=413,
                    message=(
                        f"{size} bytes of scenarios are more than the {MAX_SESSION_SCENARIO_BYTES} "
                        "bytes a session may hold."
                    ),
                    code="session_too_large",
                )
            self._rebuild(session, self.shared.scenarios, scenarios.scenarios)  # ScenarioError
            session.added_bytes = size

    def delete(self, name: str, scenario: str) -> bool:
        """Remove one of the session's own scenarios; False if it has none of that name."""
        with self._lock:
            session = self._session(name)
            kept = tuple(s for s in session.added if s.name != scenario)
            if len(kept) == len(session.added):
                return False
            self._rebuild(session, session.base, kept)
            return True

    def own(self, name: str) -> tuple[Scenario, ...]:
        """The scenarios added to a session (none if it does not exist)."""
        with self._lock:
            session = self._sessions.get(name)
            return () if session is None else self._fresh(session).added

    def taken(self, names: set[str]) -> list[Problem]:
        """A problem for each name in `names` that a session's own scenario already uses."""
        with self._lock:
            sessions = list(self._sessions.items())
        return [
            Problem(
                s.file,
                s.line,
                "name",
                f"scenario name {s.name!r} is used by session {session_name!r}",
            )
            for session_name, session in sessions
            for s in session.added
            if s.name in names
        ]

    def reset(self, name: str | None = None) -> None:
        """Forget one session's positions and journal, or every session (and the shared
        state: the whole server starts clean)."""
        if name is not None:
            found = self.find(name)
            if found is not None:
                found.reset()
            return
        with self._lock:
            self._sessions.clear()
        self.shared.reset()
