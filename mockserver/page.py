"""The journal page at `/_mockserver/` and its assets, shipped in the package (`mockserver/page/`),
read once at import: no build step, no CDN, and no request can name another file."""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mockserver.errors import ApiError

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
_FILES = ("index.html", "app.js", "style.css")
ASSETS: dict[str, tuple[bytes, str]] = {
    name: (
        (resources.files("mockserver") / "page" / name).read_bytes(),
        _TYPES[name[name.rfind(".") :]],
    )
    for name in _FILES
}
SECURITY = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def _send(name: str) -> Response:
    body, kind = ASSETS[name]
    return Response(body, media_type=kind, headers=SECURITY)


async def index(request: Request) -> Response:
    return _send("index.html")


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in ASSETS or name == "index.html":
        error = ApiError(
            status=404, message=f"No page asset {name!r}.", code="not_found", type="not_found"
        )
        return JSONResponse(error.body(), status_code=404)
    return _send(name)


def _op(summary: str, *, session: bool = True, body: str | None = None, **extra: Any) -> Any:
    params: list[Any] = []
    if session:
        params.append(
            {"name": "session", "in": "query", "schema": {"type": "string"}, "required": False}
        )
    op: dict[str, Any] = {"summary": summary, "parameters": params, **extra}
    if body is not None:
        op["requestBody"] = {"content": {body: {"schema": {"type": "object"}}}}
    op.setdefault("responses", {"200": {"description": "OK"}})
    op["responses"].update(
        {
            "400": {"description": "Bad input: `error.message` says what, `problems` where"},
            "401": {"description": "--admin-token set and no matching Authorization: Bearer"},
            "403": {"description": "control API off, or a state change without JSON/header"},
            "413": {"description": "body over 1 MiB (the control body limit)"},
        }
    )
    return op


_FILTERS = [
    {"name": n, "in": "query", "schema": {"type": t}, "required": False}
    for n, t in (
        ("all_sessions", "boolean"),
        ("scenario", "string"),
        ("status", "integer"),
        ("unmatched", "boolean"),
        ("since", "number"),
        ("limit", "integer"),
    )
]


_BUNDLE = {
    "type": "object",
    "required": ["document"],
    "additionalProperties": False,
    "properties": {
        "document": {"type": "string", "description": "a scenario file's text (YAML or JSON)"},
        "files": {
            "type": "object",
            "description": "each audio `file:` name the document uses -> its bytes in base64 "
            "(4 MiB of audio at most, MAX_BUNDLE_AUDIO; 6 MiB of body, MAX_BUNDLE_BODY)",
            "additionalProperties": {"type": "string", "contentEncoding": "base64"},
        },
    },
}
_SOURCE = {
    "name": "source",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "where the scenarios came from, shown as their file (`where`: SOURCE:LINE)",
}


def _scenarios_op(summary: str, status: str) -> Any:
    """POST/PUT scenarios: a scenario file's text, or a bundle with the audio it names."""
    op = _op(summary, body="application/yaml", responses={"201": {"description": status}})
    op["requestBody"]["content"]["application/json"] = {
        "schema": {"oneOf": [_BUNDLE, {"type": "object", "description": "a scenario file"}]}
    }
    op["parameters"].append(_SOURCE)
    return op


def openapi() -> dict[str, Any]:
    """The control API's OpenAPI 3.1 document (served at `/_mockserver/openapi.json`)."""
    journal = _op("The journal, oldest first (the newest `limit` entries)")
    journal["parameters"] += _FILTERS
    return {
        "openapi": "3.1.0",
        "info": {"title": "mockserver control API", "version": "1"},
        "components": {
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "session": {"name": "x-mockserver-session", "in": "header", "required": False}
            },
        },
        "security": [{}, {"admin": []}],
        "paths": {
            "/_mockserver/scenarios": {
                "get": _op("List scenarios with their use counts and where they came from"),
                "post": _scenarios_op(
                    "Add scenarios (YAML or JSON, as a scenario file, or a bundle of one with "
                    "the audio files it names)",
                    "Added",
                ),
                "put": _scenarios_op(
                    "Replace the scenarios (shared, or a session's own)", "Replaced"
                ),
            },
            "/_mockserver/scenarios/{name}": {
                "delete": _op(
                    "Remove one scenario",
                    responses={"200": {"description": "Deleted"}, "404": {"description": "None"}},
                )
            },
            "/_mockserver/journal": {"get": journal},
            "/_mockserver/verify": {
                "post": _op(
                    "Check expectations: {scenario, times}, {match, times}, {unmatched}, "
                    "{all_used}",
                    body="application/json",
                    responses={
                        "200": {"description": "Every expectation holds"},
                        "409": {"description": "`failures` and `message` name what differed"},
                    },
                )
            },
            "/_mockserver/reset": {"post": _op("Reset one session, or everything")},
            "/_mockserver/sessions": {"get": _op("The live sessions", session=False)},
            "/_mockserver/sessions/{name}/v1/chat/completions": {
                "post": _op("The API within a session (for clients without headers)")
            },
        },
    }
