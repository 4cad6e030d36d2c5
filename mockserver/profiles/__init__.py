"""Profiles: which server the mock speaks as. The engine asks its profile, never checks a name.

A profile decides what requests are accepted and refused (`parse`), the error body
(`error_body`), the models list (`model`), and which response fields exist
(`completion_body`, `chunk_events`). `openai` is OpenAI's API exactly (the default);
`vllm` is vLLM's OpenAI-compatible server. README "Profiles" tabulates the differences.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from mockserver.profiles.base import PROFILES, REASONING_FIELDS, Options, Profile, ProfileName
from mockserver.profiles.openai import OpenAIProfile
from mockserver.profiles.vllm import VllmProfile

__all__ = ["PROFILES", "REASONING_FIELDS", "Options", "Profile", "ProfileName", "get", "spoken_by"]


def get(name: str, options: Options | None = None) -> Profile:
    """The profile called `name` (one of `PROFILES`)."""
    if name == "openai":
        return OpenAIProfile()
    if name == "vllm":
        return VllmProfile(options or Options())
    raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")


def spoken_by(texts: Iterable[bytes | str]) -> ProfileName | None:
    """The profile an upstream's chat completion (its body, or its stream's events) shows:
    `vllm` when it carries vLLM's `stop_reason` key (OpenAI's chat completions has none) or is
    vLLM's error body (an integer `code`; OpenAI's is a string or null), else None (nothing
    tells). The recorder writes it into the files it records."""
    for text in texts:
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if b'"stop_reason":' in data and b'"chat.completion' in data:
            return "vllm"
        if data.startswith(b'{"error"') and len(data) < 65536:
            try:
                code = json.loads(data)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                continue
            if type(code) is int:
                return "vllm"
    return None
