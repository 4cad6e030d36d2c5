"""What strict mode refuses on top of the default rules.

Strict mode (`--strict`, `EngineConfig(strict=True)`, or `strict: true` in the scenario file
that answers) makes the mock as picky as the real API is for the model named:

- unknown parameters: top-level ones with "Unrecognized request argument supplied: X", nested
  ones (`messages[1].reasoning_content`) with "Unknown parameter: 'X'.";
- `response_format: json_object` without the word "json" in the messages (rule 5);
- model-specific rules for reasoning models (`o1`, `o3`, `o4-mini`, `gpt-5`, ...): `max_tokens`
  (rule 6), a `temperature` / `top_p` other than 1, `stop` on o3 / o4-mini; and
  `reasoning_effort` on models that do not reason (`gpt-4*`, `gpt-3.5*`);
- `parallel_tool_calls` without `tools`, `function_call` without a matching `functions` entry.

These run only in strict mode, so they cost the default hot path nothing.
"""

from __future__ import annotations

import re

from mockserver.errors import ApiError
from mockserver.request import ChatRequest
from mockserver.validation.errors import rule, show

REASONING_MODELS = re.compile(r"(o[1-9]|gpt-5)(?!.*-chat)")
NON_REASONING_MODELS = re.compile(r"gpt-(4|3\.5)")
NO_STOP_MODELS = re.compile(r"(o3|o4-mini)")


def unknown_parameter(name: str) -> ApiError:
    """The API's answer to a parameter it does not know."""
    if "." in name or "[" in name:
        message = f"Unknown parameter: '{show(name)}'."
    else:
        message = f"Unrecognized request argument supplied: {show(name)}"
    return ApiError(status=400, message=message, param=name, code="unknown_parameter")


def _unsupported(param: str) -> ApiError:
    return rule(
        f"Unsupported parameter: '{param}' is not supported with this model.",
        param,
        "unsupported_parameter",
    )


def _model_rules(request: ChatRequest) -> ApiError | None:
    body = request.body
    model = request.model
    if REASONING_MODELS.match(model):
        if body.get("max_tokens") is not None:
            return rule(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        if request.reasoning_effort != "none":
            for param in ("temperature", "top_p"):
                value = body.get(param)
                if value is not None and value != 1:
                    return rule(
                        f"Unsupported value: '{param}' does not support {value!r} with this "
                        "model. Only the default (1) value is supported.",
                        param,
                        "unsupported_value",
                    )
        if body.get("stop") is not None and NO_STOP_MODELS.match(model):
            return _unsupported("stop")
    elif body.get("reasoning_effort") is not None and NON_REASONING_MODELS.match(model):
        return _unsupported("reasoning_effort")
    return None


def _tool_rules(request: ChatRequest) -> ApiError | None:
    body = request.body
    if body.get("parallel_tool_calls") is not None and not body.get("tools"):
        return rule(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed "
            "when 'tools' are specified.",
            "parallel_tool_calls",
        )
    call = body.get("function_call")
    if call is not None:
        functions = body.get("functions") or []
        if not functions:
            return rule(
                "Invalid value for 'function_call': 'function_call' is only allowed when "
                "'functions' are specified.",
                "function_call",
            )
        names = {f.get("name") for f in functions}
        if isinstance(call, dict) and call.get("name") not in names:
            return rule(
                f"Invalid value for 'function_call': no function named "
                f"'{show(call.get('name'))}' is given in 'functions'.",
                "function_call.name",
                "invalid_value",
            )
    return None


def strict_error(request: ChatRequest) -> ApiError | None:
    """The first rule strict mode adds that `request` breaks, or None."""
    if request.unknown_fields:
        return unknown_parameter(request.unknown_fields[0])
    if request.response_format == "json_object" and not any(
        "json" in m.text.lower() for m in request.messages
    ):
        if request.api == "responses":
            return rule(
                "Response input messages must contain the word 'json' in some form to use "
                "'text.format' of type 'json_object'.",
                "input",
            )
        return rule(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.",
            "messages",
        )
    return _model_rules(request) or _tool_rules(request)


def check_strict(request: ChatRequest) -> None:
    """Raise the error of `strict_error`, if any."""
    error = strict_error(request)
    if error is not None:
        raise error
