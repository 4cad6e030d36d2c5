"""The control API under `/_mockserver/`: scenarios, journal, verify, reset, sessions, the page.

Every route goes through `guard` (who may use the control API at all), reads at most
`MAX_CONTROL_BODY` bytes, refuses unknown parameters and fields, and answers errors in
OpenAI's envelope (`{"error": {...}}`, plus `problems` for scenarios that do not load). Nothing
a request sends names a file the server reads or writes: scenarios sent here may not use
`file:` (see `scenarios.NO_FILES`). A route takes the session from the `x-mockserver-session`
header or a `session` query parameter; without one it works on the shared state.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver import journal_view, page
from mockserver.engine import MockEngine
from mockserver.errors import ApiError, Problem, ScenarioError
from mockserver.scenarios import NO_FILES, Scenario, ScenarioSet, load_text
from mockserver.sessions import Sessions, check_name
from mockserver.verify import check_expectations

MAX_CONTROL_BODY = 1024 * 1024
"""The largest body a control request may send (scenarios, expectations), in bytes."""
MAX_BUNDLE_BODY = 6 * 1024 * 1024
"""The largest scenario bundle (`{"document", "files"}`: scenarios with their audio, base64)
`POST`/`PUT /_mockserver/scenarios` accepts, in bytes."""
MAX_BUNDLE_AUDIO = 4 * 1024 * 1024
"""The most audio bytes (decoded) one bundle may carry, all files together."""
MAX_SOURCE = 200
"""The longest `source` label (where the scenarios came from, shown as their file)."""
BUNDLE_KEYS = ("document", "files")
ADMIN_HEADER = "x-mockserver-admin"
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Admin:
    """Who may use the `/_mockserver/` routes: nobody when not `enabled` (`--no-admin`, or a
    non-loopback bind without a token), else anyone who sends `Authorization: Bearer {token}`
    (when a token is set)."""

    enabled: bool = True
    token: str | None = None


def guard(admin: Admin, headers: Mapping[str, str], changes: bool) -> ApiError | None:
    """Why a control request may not be served, or None (`headers`: lower-case names).

    A state-changing request must carry a JSON content type or an `x-mockserver-admin` header:
    a web page's cross-origin form or `text/plain` POST can send neither without a CORS
    preflight, which this server never grants.
    """
    if not admin.enabled:
        return ApiError(
            status=403,
            message="The /_mockserver/ control API is off on this server (--no-admin, or a "
            "non-loopback bind without --admin-token).",
            code="admin_disabled",
        )
    if admin.token is not None:
        sent = headers.get("authorization", "").encode()
        if not hmac.compare_digest(sent, f"Bearer {admin.token}".encode()):
            return ApiError(
                status=401,
                message="The /_mockserver/ control API needs Authorization: Bearer TOKEN, with "
                "the token given to mockserver --admin-token.",
                code="invalid_admin_token",
            )
    if changes:
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json" and ADMIN_HEADER not in headers:
            return ApiError(
                status=403,
                message="A state-changing control request needs content-type: application/json "
                f"or an {ADMIN_HEADER} header (so that no web page can send one).",
                code="admin_request_not_json",
            )
    return None


def error_response(error: ApiError, problems: list[Problem] | None = None) -> JSONResponse:
    body: dict[str, Any] = dict(error.body())
    if problems is not None:
        body["problems"] = [str(p) for p in problems]
    return JSONResponse(body, status_code=error.status)


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(status=400, message=message, param=param, code=code)


async def read_body(request: Request, limit: int = MAX_CONTROL_BODY) -> bytes:
    """The body, or an `ApiError` 413 naming the limit once it passes `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int = MAX_CONTROL_BODY) -> ApiError:
    what = (
        "a scenario bundle (MAX_BUNDLE_BODY)"
        if limit == MAX_BUNDLE_BODY
        else "a /_mockserver/ control request"
    )
    return ApiError(
        status=413,
        message=f"The request body is {size} bytes or more, more than the {limit} bytes "
        f"{what} may send.",
        code="request_too_large",
    )


@dataclass(frozen=True, slots=True)
class Bundle:
    """Scenarios sent with the audio files they name: `{"document": TEXT, "files": {NAME:
    BASE64}}` (the pytest plugin sends one for a test on a shared server)."""

    document: str
    files: dict[str, bytes]

    @property
    def size(self) -> int:
        """What it counts for in a session's scenario budget: the text and the audio."""
        return len(self.document.encode()) + sum(map(len, self.files.values()))


def read_bundle(value: Any) -> Bundle:
    """A bundle from its JSON, or an `ApiError` naming the key and the limit broken."""
    if unknown := sorted(set(value) - set(BUNDLE_KEYS)):
        raise _bad(
            f"Unknown bundle key {unknown[0]!r}; allowed: {', '.join(BUNDLE_KEYS)}.",
            unknown[0],
            "unknown_field",
        )
    document = value.get("document")
    if not isinstance(document, str):
        raise _bad("document must be the scenario file's text (a string).", "document")
    sent = value.get("files", {})
    if not isinstance(sent, dict):
        raise _bad("files must be a mapping of file name to base64 bytes.", "files")
    files: dict[str, bytes] = {}
    total = 0
    for name, text in sent.items():
        if not isinstance(text, str):
            raise _bad(f"files[{name!r}] must be base64 text.", "files")
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:
            raise _bad(f"files[{name!r}] is not valid base64.", "files") from None
        total += len(data)
        if total > MAX_BUNDLE_AUDIO:
            raise ApiError(
                status=413,
                message=f"The bundle's files hold more than the {MAX_BUNDLE_AUDIO} bytes of "
                "audio one bundle may carry (MAX_BUNDLE_AUDIO); load large audio at startup "
                "(mockserver serve FILE).",
                param="files",
                code="bundle_too_large",
            )
        files[name] = data
    return Bundle(document, files)


def _source(request: Request) -> str | None:
    source = request.query_params.get("source")
    if source is not None and not (0 < len(source) <= MAX_SOURCE and source.isprintable()):
        raise _bad(
            f"source must be 1 to {MAX_SOURCE} printable characters (a label such as "
            "tests/test_chat.py:12).",
            "source",
        )
    return source


def check_params(request: Request, allowed: tuple[str, ...]) -> None:
    for key in request.query_params:
        if key not in allowed:
            shown = ", ".join(allowed) if allowed else "none"
            raise _bad(
                f"Unknown query parameter {key!r}; allowed: {shown}.", key, "unknown_parameter"
            )


def session_of(request: Request) -> str | None:
    """The session a control request is about (header or `session` parameter), or None."""
    name = request.query_params.get("session") or request.headers.get("x-mockserver-session")
    return None if name is None else check_name(name)


class Control:
    """The control routes of one server: its sessions (and through them, the shared engine)."""

    def __init__(self, sessions: Sessions, admin: Admin) -> None:
        self.sessions = sessions
        self.shared = sessions.shared
        self.admin = admin
        self._posts = itertools.count(1)

    def routes(self) -> list[Route]:
        g = self._guarded
        return [
            Route("/_mockserver/", self._page(page.index), methods=["GET"]),
            Route("/_mockserver/page/{asset}", self._page(page.asset), methods=["GET"]),
            Route("/_mockserver/openapi.json", g(self.openapi, False), methods=["GET"]),
            Route("/_mockserver/scenarios", g(self.list_scenarios, False), methods=["GET"]),
            Route("/_mockserver/scenarios", g(self.add_scenarios, True), methods=["POST"]),
            Route("/_mockserver/scenarios", g(self.replace_scenarios, True), methods=["PUT"]),
            Route(
                "/_mockserver/scenarios/{name:path}",
                g(self.delete_scenario, True),
                methods=["DELETE"],
            ),
            Route("/_mockserver/journal", g(self.journal, False), methods=["GET"]),
            Route("/_mockserver/verify", g(self.verify, True), methods=["POST"]),
            Route("/_mockserver/reset", g(self.reset, True), methods=["POST"]),
            Route("/_mockserver/sessions", g(self.list_sessions, False), methods=["GET"]),
        ]

    def _page(self, handler: Handler) -> Handler:
        """The page itself holds no data: only `--no-admin` hides it (the token is asked for
        by the page, and sent with its requests for data)."""

        async def run(request: Request) -> Response:
            if not self.admin.enabled:
                refusal = guard(self.admin, request.headers, False)
                assert refusal is not None
                return error_response(refusal)
            return await handler(request)

        return run

    def _guarded(self, handler: Handler, changes: bool) -> Handler:
        async def run(request: Request) -> Response:
            refusal = guard(self.admin, request.headers, changes)
            if refusal is not None:
                return error_response(refusal)
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(error)
            except ScenarioError as error:
                return error_response(
                    _bad(
                        f"The scenarios do not load ({len(error.problems)} problems; see "
                        "`problems`).",
                        code="invalid_scenarios",
                    ),
                    list(error.problems),
                )

        return run

    def _engine(self, session: str | None, *, create: bool = False) -> MockEngine | None:
        if session is None:
            return self.shared
        return self.sessions.engine(session) if create else self.sessions.find(session)

    # -- scenarios ----------------------------------------------------------------------------

    async def _scenario_body(self, request: Request) -> tuple[ScenarioSet, int]:
        """The scenarios a body holds (a scenario file's text, or a `Bundle` of it with the
        audio it names), and the bytes they count for."""
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        bundled = kind == "application/json"
        raw = await read_body(request, MAX_BUNDLE_BODY if bundled else MAX_CONTROL_BODY)
        source = _source(request)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"The body is not UTF-8 text: {exc}.", code="invalid_body") from None
        bundle = None
        if bundled and text.lstrip().startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = None  # the loader says where the JSON is wrong
            if isinstance(value, dict) and "document" in value:
                bundle = read_bundle(value)
        if bundle is None and len(raw) > MAX_CONTROL_BODY:
            raise _too_large(len(raw))
        file = source or f"{request.method}#{next(self._posts)}"  # where they are said to be
        if bundle is None:
            refuse_aliases(text, file)
            return load_text(text, file, NO_FILES), len(raw)
        refuse_aliases(bundle.document, file)
        return load_text(bundle.document, file, NO_FILES, files=bundle.files), bundle.size

    async def list_scenarios(self, request: Request) -> Response:
        check_params(request, ("session",))
        session = session_of(request)
        engine = self._engine(session) or self.shared.fork()  # no such session: nothing used
        own = {s.name for s in self.sessions.own(session)} if session else set()
        uses = engine.uses()
        data = [
            {
                "name": s.name,
                "file": s.file,
                "line": s.line,
                "where": s.where,
                "priority": s.priority,
                "optional": s.optional,
                "replies": len(s.replies),
                "after": s.after,
                "uses": uses.get(s.name, 0),
                "session": session if s.name in own else None,
            }
            for s in engine.scenarios.scenarios
        ]
        return JSONResponse({"object": "list", "data": data})

    async def add_scenarios(self, request: Request) -> Response:
        return await self._put_scenarios(request, replace=False)

    async def replace_scenarios(self, request: Request) -> Response:
        return await self._put_scenarios(request, replace=True)

    async def _put_scenarios(self, request: Request, *, replace: bool) -> Response:
        """POST (add) and PUT (replace): to the shared set, or to one session's own."""
        check_params(request, ("session", "source"))
        session = session_of(request)
        scenarios, size = await self._scenario_body(request)
        if session is None:
            if problems := self.sessions.taken({s.name for s in scenarios.scenarios}):
                raise ScenarioError(tuple(problems))
            if replace:
                self.shared.replace_scenarios(scenarios)
            else:
                self.shared.add_scenarios(scenarios.scenarios)
        elif replace:
            self.sessions.replace(session, scenarios, size)
        else:
            self.sessions.add(session, scenarios, size)
        return _added(scenarios.scenarios, session)

    async def delete_scenario(self, request: Request) -> Response:
        check_params(request, ("session",))
        session = session_of(request)
        name = request.path_params["name"]
        if session is not None:
            if not self.sessions.delete(session, name):
                raise _not_found(name, f"session {session!r}", self.sessions.own(session))
        else:
            current = self.shared.scenarios
            kept = tuple(s for s in current.scenarios if s.name != name)
            if len(kept) == len(current.scenarios):
                raise _not_found(name, "the shared scenarios", current.scenarios)
            self.shared.replace_scenarios(ScenarioSet(kept, current.files))
        return JSONResponse({"deleted": name, "session": session})

    # -- journal, verify, reset ---------------------------------------------------------------

    async def journal(self, request: Request) -> Response:
        check_params(request, journal_view.PARAMS)
        query = journal_view.Query.of(request.query_params)
        session = session_of(request)
        sources: list[tuple[str | None, MockEngine]]
        if request.query_params.get("all_sessions") == "true":
            sources = [(None, self.shared)] + [
                (n, e) for n in self.sessions.names() if (e := self.sessions.find(n))
            ]
        else:
            engine = self._engine(session)
            sources = [] if engine is None else [(session, engine)]
        dropped = sum(engine.journal_dropped for _, engine in sources)
        budget = self.shared.config.journal_bytes
        body = await to_thread.run_sync(journal_view.encoded, sources, query, dropped, budget)
        return Response(body, media_type="application/json")

    async def verify(self, request: Request) -> Response:
        check_params(request, ("session",))
        session = session_of(request)
        raw = await read_body(request)
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise _bad(f"The body is not JSON: {exc}.", code="invalid_json") from None
        engine = self._engine(session) or self.shared.fork()
        failures, checked = check_expectations(body, engine)
        if not failures:
            return JSONResponse({"ok": True, "checked": checked, "session": session})
        lines = "\n".join(f"- {f}" for f in failures)
        return JSONResponse(
            {
                "ok": False,
                "checked": checked,
                "session": session,
                "failures": failures,
                "message": f"{len(failures)} of {checked} expectations failed:\n{lines}",
            },
            status_code=409,
        )

    async def reset(self, request: Request) -> Response:
        check_params(request, ("session",))
        session = session_of(request)
        await read_body(request)
        self.sessions.reset(session)
        return JSONResponse({"reset": True, "session": session})

    async def list_sessions(self, request: Request) -> Response:
        check_params(request, ())
        data = [{"name": n} for n in self.sessions.names()]
        return JSONResponse({"object": "list", "data": data, "limit": self.sessions.limit})

    async def openapi(self, request: Request) -> Response:
        check_params(request, ())
        return JSONResponse(page.openapi())


def _added(scenarios: tuple[Scenario, ...], session: str | None) -> JSONResponse:
    names = [s.name for s in scenarios]
    return JSONResponse({"added": names, "session": session}, status_code=201)


def _not_found(name: str, where: str, scenarios: tuple[Scenario, ...]) -> ApiError:
    names = ", ".join(repr(s.name) for s in scenarios[:20]) or "none"
    more = f" and {len(scenarios) - 20} more" if len(scenarios) > 20 else ""
    return ApiError(
        status=404,
        message=f"No scenario named {name!r} in {where}; it has {names}{more}.",
        code="scenario_not_found",
    )


def refuse_aliases(text: str, file: str) -> None:
    """YAML aliases (`*name`) can make a small body expand into a huge tree: refused here."""
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else None
                raise ScenarioError(
                    (Problem(file, line, "", "YAML aliases (*name) are not accepted here"),)
                )
    except yaml.YAMLError:
        return  # load_text reports the syntax error with its line


def routes(sessions: Sessions, admin: Admin) -> list[Route]:
    """The control routes for `MockApp`'s Starlette app."""
    return Control(sessions, admin).routes()
