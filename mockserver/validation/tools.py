"""`tools`, `tool_choice`, legacy `functions` / `function_call`, `response_format`, and the shape
of the JSON Schemas they carry (with Structured Outputs' extra rules when `strict` is true).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from mockserver import known
from mockserver.validation.errors import (
    array,
    boolean,
    choice,
    closed,
    name,
    note_unknown,
    obj,
    required,
    rule,
    show,
    string,
    wrong_type,
)
from mockserver.validation.fast import fast_function_tools
from mockserver.validation.schema import check_schema
from mockserver.wire import JSON

TOOL_TYPES = ("function", "custom")
TOOL_CHOICES = ("none", "auto", "required")
TOOL_CHOICE_TYPES = ("function", "custom", "allowed_tools")
ALLOWED_TOOLS_MODES = ("auto", "required")
FUNCTION_CALL_MODES = ("none", "auto")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
GRAMMAR_SYNTAXES = ("lark", "regex")
SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

_TOOL_KEYS = frozenset({"type", "function", "custom"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_CUSTOM_KEYS = frozenset({"name", "description", "format"})
_LEGACY_KEYS = frozenset({"name", "description", "parameters"})
_JSON_SCHEMA_KEYS = frozenset({"name", "description", "schema", "strict"})
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMAS = ("additionalProperties", "not", "if", "then", "else", "contains", "items")
_CHILD_KEYS = frozenset(_SUBSCHEMA_LISTS + _SUBSCHEMA_MAPS + _SUBSCHEMAS)


@dataclass(frozen=True, slots=True)
class Tools:
    """The tool names a request offers: function tools, custom tools, legacy functions."""

    functions: tuple[str, ...] = ()
    custom: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    key: bytes | None = None
    """The `tools` list as orjson writes it (its key in `mockserver.known`), when keyed."""

    @property
    def names(self) -> tuple[str, ...]:
        return self.functions + self.custom + self.legacy


def _strict_flag(container: dict[str, JSON], param: str) -> bool:
    value = container.get("strict")
    return False if value is None else boolean(value, f"{param}.strict")


def _description(container: dict[str, JSON], param: str) -> None:
    if "description" in container:
        string(container["description"], f"{param}.description")


# -- tools ----------------------------------------------------------------------------------


def _function(spec: dict[str, JSON], param: str, unknown: list[str], legacy: bool) -> str:
    fn_name = name(required(spec, "name", param), f"{param}.name")
    _description(spec, param)
    strict = False if legacy else _strict_flag(spec, param)
    parameters = spec.get("parameters")
    if "parameters" in spec:
        where = f"{param}.parameters"
        root = obj(parameters, where)
        check_schema(root, strict, ("function", fn_name), where, "invalid_function_parameters")
    note_unknown(spec, _LEGACY_KEYS if legacy else _FUNCTION_KEYS, param, unknown)
    return fn_name


def _custom_format(value: JSON, param: str) -> None:
    fmt = obj(value, param)
    kind = choice(
        required(fmt, "type", param), f"{param}.type", ("text", "grammar"), ("text", "grammar")
    )
    if kind == "text":
        closed(fmt, frozenset({"type"}), param)
        return
    closed(fmt, frozenset({"type", "grammar"}), param)
    where = f"{param}.grammar"
    grammar = obj(required(fmt, "grammar", param), where)
    string(required(grammar, "definition", where), f"{where}.definition")
    choice(
        required(grammar, "syntax", where), f"{where}.syntax", GRAMMAR_SYNTAXES, GRAMMAR_SYNTAXES
    )


def parse_tools(
    body: dict[str, JSON], unknown: list[str], *, fast: bool = True, keyed: bool = False
) -> Tools:
    """`tools` and legacy `functions`, validated; the names they offer.

    Plain function tools take the fast path (`fast`) unless `fast` is false; with `keyed` (a
    body orjson read, see `decode_exact`) what they give is kept per list in `mockserver.known`.
    """
    functions: list[str] = []
    custom: list[str] = []
    legacy: list[str] = []
    value = body.get("tools")
    if fast and "functions" not in body:
        key = known.key_of(value) if keyed else None
        kept = known.TOOLS.get(key)  # (None is never a key)
        if kept is not None:
            return kept
        names = fast_function_tools(value)
        if names is not None:
            tools = Tools(functions=names, key=key)
            if key is not None:
                known.keep_tools(key, tools)
            return tools
    if value is not None:
        for i, raw in enumerate(array(value, "tools", min_items=1)):
            param = f"tools[{i}]"
            tool = obj(raw, param)
            kind = choice(required(tool, "type", param), f"{param}.type", TOOL_TYPES, TOOL_TYPES)
            where = f"{param}.{kind}"
            spec = obj(required(tool, kind, param), where)
            if kind == "function":
                functions.append(_function(spec, where, unknown, legacy=False))
            else:
                custom.append(name(required(spec, "name", where), f"{where}.name"))
                _description(spec, where)
                if "format" in spec:
                    _custom_format(spec["format"], f"{where}.format")
                note_unknown(spec, _CUSTOM_KEYS, where, unknown)
            note_unknown(tool, _TOOL_KEYS, param, unknown)
    value = body.get("functions")
    if value is not None:
        for i, raw in enumerate(array(value, "functions", min_items=1, max_items=128)):
            legacy.append(_function(obj(raw, f"functions[{i}]"), f"functions[{i}]", unknown, True))
    return Tools(tuple(functions), tuple(custom), tuple(legacy))


def _named(value: JSON, kind: str, param: str, offered: tuple[str, ...]) -> str:
    where = f"{param}.{kind}"
    tool_name = string(required(obj(value, where), "name", where), f"{where}.name")
    if tool_name not in offered:
        raise rule(
            f"Invalid value for '{param}': no {kind} tool named '{show(tool_name)}' is given in "
            "'tools'.",
            f"{where}.name",
            "invalid_value",
        )
    return tool_name


def parse_tool_choice(value: JSON, tools: Tools) -> tuple[str | None, str | None]:
    """`tool_choice` -> (mode, forced tool name)."""
    if value is None:
        return None, None
    if type(value) is str:
        mode = choice(value, "tool_choice", TOOL_CHOICES, TOOL_CHOICES)
        if mode != "none" and not (tools.functions or tools.custom):
            _needs_tools()
        return mode, None
    if type(value) is not dict:
        wrong_type("tool_choice", "one of a string or object", value)
    if not (tools.functions or tools.custom):
        _needs_tools()
    kind = choice(
        required(value, "type", "tool_choice"),
        "tool_choice.type",
        TOOL_CHOICE_TYPES,
        TOOL_CHOICE_TYPES,
    )
    if kind == "function":
        return "required", _named(value.get("function"), "function", "tool_choice", tools.functions)
    if kind == "custom":
        return "required", _named(value.get("custom"), "custom", "tool_choice", tools.custom)
    where = "tool_choice.allowed_tools"
    allowed = obj(required(value, "allowed_tools", "tool_choice"), where)
    mode = choice(
        required(allowed, "mode", where), f"{where}.mode", ALLOWED_TOOLS_MODES, ALLOWED_TOOLS_MODES
    )
    for i, raw in enumerate(array(required(allowed, "tools", where), f"{where}.tools")):
        at = f"{where}.tools[{i}]"
        entry = obj(raw, at)
        tool_kind = choice(required(entry, "type", at), f"{at}.type", TOOL_TYPES, TOOL_TYPES)
        offered = tools.functions if tool_kind == "function" else tools.custom
        if type(entry.get(tool_kind)) is dict:
            _named(entry[tool_kind], tool_kind, at, offered)
        elif "name" in entry:
            _named(entry, tool_kind, at, offered)
    return mode, None


def _needs_tools() -> NoReturn:
    raise rule(
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
        "specified.",
        "tool_choice",
    )


def parse_function_call(value: JSON) -> tuple[str | None, str | None]:
    """Legacy `function_call` -> (mode, forced function name)."""
    if value is None:
        return None, None
    if type(value) is str:
        return choice(value, "function_call", FUNCTION_CALL_MODES, FUNCTION_CALL_MODES), None
    call = obj(value, "function_call")
    return "required", string(required(call, "name", "function_call"), "function_call.name")


# -- response_format ------------------------------------------------------------------------


def parse_response_format(value: JSON, unknown: list[str]) -> tuple[str | None, str | None]:
    """`response_format` -> (type, json_schema name)."""
    if value is None:
        return None, None
    fmt = obj(value, "response_format")
    kind = choice(
        required(fmt, "type", "response_format"),
        "response_format.type",
        RESPONSE_FORMATS,
        RESPONSE_FORMATS,
    )
    if kind != "json_schema":
        note_unknown(fmt, frozenset({"type"}), "response_format", unknown)
        return kind, None
    where = "response_format.json_schema"
    spec = obj(required(fmt, "json_schema", "response_format"), where)
    schema_name = name(required(spec, "name", where), f"{where}.name")
    _description(spec, where)
    strict = _strict_flag(spec, where)
    schema = spec.get("schema")
    if "schema" in spec:
        root = obj(schema, f"{where}.schema")
        label = ("response_format", schema_name)
        check_schema(root, strict, label, "response_format", "invalid_json_schema")
    note_unknown(spec, _JSON_SCHEMA_KEYS, where, unknown)
    note_unknown(fmt, frozenset({"type", "json_schema"}), "response_format", unknown)
    return kind, schema_name
