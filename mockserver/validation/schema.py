"""The shape of the JSON Schemas a request carries (tool `parameters`, `response_format` schemas).

Always: each subschema is an object (or a boolean), `type` names JSON types, `required` is an
array of strings, `enum` an array, and the keywords holding subschemas hold them in the right
container. With `strict: true`, also Structured Outputs' rules: the root is an object schema,
every object schema sets `additionalProperties: false` and lists every property in `required`.
Errors read as the API's: "Invalid schema for function 'f': In context=('properties', 'a'), ...".

The walk has no recursion (deep schemas cannot overflow the stack) and tracks no paths: when it
finds a problem it walks again, the same way, keeping the path this time, to name the place.
"""

from __future__ import annotations

from typing import NoReturn

from mockserver.errors import ApiError
from mockserver.validation.errors import show
from mockserver.wire import JSON

SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_ONE = frozenset({"additionalProperties", "not", "if", "then", "else", "contains", "items"})
_CHILDREN = _LISTS | _MAPS | _ONE
_REQUIRED_HEAD = (
    "'required' is required to be supplied and to be an array including every key in properties."
)

Found = tuple[tuple[str, ...], str]
"""Where a problem is (the keys leading to it) and what it is."""


def _node_problem(node: dict[str, JSON]) -> str | None:
    kind = node.get("type")
    if kind is not None and not (type(kind) is str and kind in SCHEMA_TYPES):
        kinds = kind if type(kind) is list else [kind]
        if not kinds or any(type(k) is not str or k not in SCHEMA_TYPES for k in kinds):
            return f"{show(kind)!r} is not valid under any of the given schemas."
    needed = node.get("required")
    if needed is not None and (type(needed) is not list or any(type(n) is not str for n in needed)):
        return "'required' must be an array of strings."
    if "enum" in node and type(node["enum"]) is not list:
        return "'enum' must be an array."
    return None


def _strict_problem(node: dict[str, JSON]) -> str | None:
    kind = node.get("type")
    properties = node.get("properties")
    if not (kind == "object" or (type(kind) is list and "object" in kind)) and properties is None:
        return None
    if node.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    keys = list(properties) if type(properties) is dict else []
    needed = node.get("required")
    if type(needed) is not list:
        return f"{_REQUIRED_HEAD} Missing '{show(keys[0])}'." if keys else _REQUIRED_HEAD
    absent = [k for k in keys if k not in needed]
    if absent:
        return f"{_REQUIRED_HEAD} Missing '{show(absent[0])}'."
    extra = [k for k in needed if k not in keys]
    if extra:
        return f"{_REQUIRED_HEAD} Extra required key '{show(extra[0])}' supplied."
    return None


def _push(
    node: dict[str, JSON],
    path: tuple[str, ...],
    track: bool,
    stack: list[tuple[JSON, tuple[str, ...]]],
) -> str | None:
    """Queue the subschemas of `node`; a problem if a keyword holds the wrong container."""
    for key, children in node.items():
        if key not in _CHILDREN:
            continue
        if key in _MAPS:
            if type(children) is not dict:
                return f"'{key}' must be an object of schemas."
            for name, child in children.items():
                stack.append((child, (*path, key, name) if track else path))
        elif key in _LISTS or type(children) is list:
            if type(children) is not list or (not children and key != "items"):
                return f"'{key}' must be a non-empty array of schemas."
            for index, child in enumerate(children):
                stack.append((child, (*path, key, str(index)) if track else path))
        elif type(children) is not bool:
            stack.append((children, (*path, key) if track else path))
    return None


def _walk(root: dict[str, JSON], strict: bool, track: bool) -> Found | None:
    """The first problem in the schema, in a fixed order; paths only when `track`."""
    stack: list[tuple[JSON, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if type(node) is bool:
            continue
        if type(node) is not dict:
            return path, f"{show(node)!r} is not of type 'object', 'boolean'."
        problem = (
            _node_problem(node)
            or (_strict_problem(node) if strict else None)
            or _push(node, path, track, stack)
        )
        if problem is not None:
            return path, problem
    return None


def _fail(label: tuple[str, str], param: str, code: str, problem: str) -> NoReturn:
    raise ApiError(
        status=400,
        message=f"Invalid schema for {label[0]} '{label[1]}': {problem}",
        param=param,
        code=code,
    )


def check_schema(
    root: dict[str, JSON], strict: bool, label: tuple[str, str], param: str, code: str
) -> None:
    """Refuse a malformed schema; `label` names it: ("function", "get_weather")."""
    if strict and root.get("type") != "object":
        _fail(
            label,
            param,
            code,
            f"schema must be a JSON Schema of 'type: \"object\"', got 'type: "
            f'"{show(root.get("type"))}"\'.',
        )
    if _walk(root, strict, track=False) is not None:
        found = _walk(root, strict, track=True)
        assert found is not None
        path, problem = found
        _fail(label, param, code, f"In context={path!r}, {problem}")


def schema_is_valid(root: JSON, strict: bool) -> bool:
    """Whether `check_schema` would accept `root`, without building any message."""
    if type(root) is not dict or (strict and root.get("type") != "object"):
        return False
    return _walk(root, strict, track=False) is None
