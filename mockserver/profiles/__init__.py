"""Profiles: which server the mock speaks as. The engine asks its profile, never checks a name.

A profile decides what requests are accepted and refused (`parse`), the error body
(`error_body`), the models list (`model`), and which response fields exist
(`completion_body`, `chunk_events`). `openai` is OpenAI's API exactly (the default);
`vllm` is vLLM's OpenAI-compatible server. README "Profiles" tabulates the differences.
"""

from __future__ import annotations

from mockserver.profiles.base import PROFILES, REASONING_FIELDS, Options, Profile, ProfileName
from mockserver.profiles.openai import OpenAIProfile
from mockserver.profiles.vllm import VllmProfile

__all__ = ["PROFILES", "REASONING_FIELDS", "Options", "Profile", "ProfileName", "get"]


def get(name: str, options: Options | None = None) -> Profile:
    """The profile called `name` (one of `PROFILES`)."""
    if name == "openai":
        return OpenAIProfile()
    if name == "vllm":
        return VllmProfile(options or Options())
    raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
