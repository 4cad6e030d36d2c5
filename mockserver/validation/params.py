"""The top-level request parameters besides `model`, `messages` and the tool / format ones.

`CHECKS` maps each parameter to its check. A check gets a non-null value (every optional
parameter takes null, which means "not given"), the parameter's name, and the list where
unknown nested keys are recorded.
"""

from __future__ import annotations

from collections.abc import Callable

from mockserver.errors import invalid
from mockserver.validation.errors import (
    array,
    boolean,
    choice,
    closed,
    empty_array,
    int_in,
    note_unknown,
    number_in,
    obj,
    required,
    string,
    too_long_string,
    wrong_type,
)
from mockserver.validation.parts import check_breakpoint
from mockserver.wire import AUDIO_FORMATS, JSON

Check = Callable[[JSON, str, list[str]], object]

VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
MODALITIES = ("text", "audio")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
VERBOSITIES = ("low", "medium", "high")
CACHE_RETENTIONS = ("in_memory", "24h")
CACHE_MODES = ("implicit", "explicit")
CACHE_TTLS = ("30m",)
CONTEXT_SIZES = ("low", "medium", "high")
MODERATION_MODES = ("score", "block")
INT64 = 2**63
METADATA_PAIRS = 16
METADATA_KEY = 64
METADATA_VALUE = 512


def _enum(values: tuple[str, ...]) -> Check:
    allowed = frozenset(values)

    def check(value: JSON, param: str, unknown: list[str]) -> str:
        return choice(value, param, allowed, values)

    return check


def _number(low: float, high: float) -> Check:
    def check(value: JSON, param: str, unknown: list[str]) -> float:
        return number_in(value, param, low, high)

    return check


def _integer(low: int | None, high: int | None) -> Check:
    def check(value: JSON, param: str, unknown: list[str]) -> int:
        return int_in(value, param, low, high)

    return check


def _boolean(value: JSON, param: str, unknown: list[str]) -> bool:
    return boolean(value, param)


def _string(value: JSON, param: str, unknown: list[str]) -> str:
    return string(value, param)


def _identifier(value: JSON, param: str, unknown: list[str]) -> str:
    text = string(value, param)
    if len(text) > 64:
        too_long_string(param, 64, len(text))
    return text


def _audio(value: JSON, param: str, unknown: list[str]) -> None:
    audio = obj(value, param)
    voice = required(audio, "voice", param)
    if type(voice) is dict:
        closed(voice, frozenset({"id"}), f"{param}.voice")
        string(required(voice, "id", f"{param}.voice"), f"{param}.voice.id")
    elif type(voice) is str:
        choice(voice, f"{param}.voice", VOICES, VOICES)
    else:
        wrong_type(f"{param}.voice", "one of a string or object", voice)
    choice(required(audio, "format", param), f"{param}.format", AUDIO_FORMATS, AUDIO_FORMATS)
    note_unknown(audio, frozenset({"voice", "format"}), param, unknown)


def _logit_bias(value: JSON, param: str, unknown: list[str]) -> None:
    for token, bias in obj(value, param).items():
        if not (token.isascii() and token.isdigit()):
            raise invalid(
                f"Invalid key in '{param}': '{token[:40]}'. Keys must be token ids (integers).",
                param=param,
            )
        int_in(bias, f"{param}.{token}", -100, 100)


def _metadata(value: JSON, param: str, unknown: list[str]) -> dict[str, JSON]:
    pairs = obj(value, param)
    if len(pairs) > METADATA_PAIRS:
        raise invalid(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{METADATA_PAIRS} properties, but got an object with {len(pairs)} properties "
            "instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, text in pairs.items():
        if len(key) > METADATA_KEY:
            raise invalid(
                f"Invalid '{param}': key '{key[:METADATA_KEY]}...' is too long. Expected keys "
                f"with maximum length {METADATA_KEY}, but got a key with length {len(key)}.",
                param=param,
                code="string_above_max_length",
            )
        where = f"{param}.{key}"
        if len(string(text, where)) > METADATA_VALUE:
            too_long_string(where, METADATA_VALUE, len(text))
    return pairs


def _modalities(value: JSON, param: str, unknown: list[str]) -> None:
    allowed = frozenset(MODALITIES)
    for i, item in enumerate(array(value, param)):
        choice(item, f"{param}[{i}]", allowed, MODALITIES)


def _moderation(value: JSON, param: str, unknown: list[str]) -> None:
    config = obj(value, param)
    string(required(config, "model", param), f"{param}.model")
    policy = config.get("policy")
    if policy is not None:
        where = f"{param}.policy"
        for key in ("input", "output"):
            side = obj(policy, where).get(key)
            if side is not None:
                at = f"{where}.{key}"
                mode = required(obj(side, at), "mode", at)
                choice(mode, f"{at}.mode", frozenset(MODERATION_MODES), MODERATION_MODES)
                note_unknown(side, frozenset({"mode"}), at, unknown)
        note_unknown(policy, frozenset({"input", "output"}), where, unknown)
    note_unknown(config, frozenset({"model", "policy"}), param, unknown)


def _text_parts(value: JSON, param: str) -> None:
    if type(value) is str:
        return
    if type(value) is not list:
        wrong_type(param, "one of a string or array of objects", value)
    if not value:
        empty_array(param)
    for i, raw in enumerate(value):
        where = f"{param}[{i}]"
        part = obj(raw, where)
        choice(required(part, "type", where), f"{where}.type", ("text",), ("text",))
        string(required(part, "text", where), f"{where}.text")
        if "prompt_cache_breakpoint" in part:
            check_breakpoint(part, where)


def _prediction(value: JSON, param: str, unknown: list[str]) -> None:
    prediction = obj(value, param)
    choice(required(prediction, "type", param), f"{param}.type", ("content",), ("content",))
    _text_parts(required(prediction, "content", param), f"{param}.content")
    note_unknown(prediction, frozenset({"type", "content"}), param, unknown)


def _cache_options(value: JSON, param: str, unknown: list[str]) -> None:
    options = obj(value, param)
    if "ttl" in options:
        choice(options["ttl"], f"{param}.ttl", CACHE_TTLS, CACHE_TTLS)
    if "mode" in options:
        choice(options["mode"], f"{param}.mode", CACHE_MODES, CACHE_MODES)
    note_unknown(options, frozenset({"ttl", "mode"}), param, unknown)


def _stop(value: JSON, param: str, unknown: list[str]) -> None:
    if type(value) is str:
        return
    if type(value) is not list:
        wrong_type(param, "one of a string or array of strings", value)
    # The schema says 1 to 4, the live API takes `[]` (LiteLLM sends it): the live API wins.
    for i, item in enumerate(array(value, param, max_items=4)):
        string(item, f"{param}[{i}]")


def _stream_options(value: JSON, param: str, unknown: list[str]) -> None:
    options = obj(value, param)
    for key in ("include_usage", "include_obfuscation"):
        if key in options:
            boolean(options[key], f"{param}.{key}")
    note_unknown(options, frozenset({"include_usage", "include_obfuscation"}), param, unknown)


def _web_search(value: JSON, param: str, unknown: list[str]) -> None:
    options = obj(value, param)
    if "search_context_size" in options:
        size = options["search_context_size"]
        choice(size, f"{param}.search_context_size", CONTEXT_SIZES, CONTEXT_SIZES)
    location = options.get("user_location")
    if location is not None:
        where = f"{param}.user_location"
        place = obj(location, where)
        choice(required(place, "type", where), f"{where}.type", ("approximate",), ("approximate",))
        at = f"{where}.approximate"
        approximate = obj(required(place, "approximate", where), at)
        for key in ("city", "country", "region", "timezone"):
            if key in approximate:
                string(approximate[key], f"{at}.{key}")
        note_unknown(approximate, frozenset({"city", "country", "region", "timezone"}), at, unknown)
        note_unknown(place, frozenset({"type", "approximate"}), where, unknown)
    note_unknown(options, frozenset({"search_context_size", "user_location"}), param, unknown)


CHECKS: dict[str, Check] = {
    "audio": _audio,
    "frequency_penalty": _number(-2.0, 2.0),
    "logit_bias": _logit_bias,
    "logprobs": _boolean,
    "max_completion_tokens": _integer(1, None),
    "max_tokens": _integer(1, None),
    "metadata": _metadata,
    "modalities": _modalities,
    "moderation": _moderation,
    "n": _integer(1, 128),
    "parallel_tool_calls": _boolean,
    "prediction": _prediction,
    "presence_penalty": _number(-2.0, 2.0),
    "prompt_cache_key": _string,
    "prompt_cache_options": _cache_options,
    "prompt_cache_retention": _enum(CACHE_RETENTIONS),
    "reasoning_effort": _enum(REASONING_EFFORTS),
    "safety_identifier": _identifier,
    "seed": _integer(-INT64, INT64 - 1),
    "service_tier": _enum(SERVICE_TIERS),
    "stop": _stop,
    "store": _boolean,
    "stream": _boolean,
    "stream_options": _stream_options,
    "temperature": _number(0.0, 2.0),
    "top_logprobs": _integer(0, 20),
    "top_p": _number(0.0, 1.0),
    "user": _string,
    "verbosity": _enum(VERBOSITIES),
    "web_search_options": _web_search,
}
"""Every top-level parameter checked here (the others: `validation.OWN_FIELDS`)."""
