"""Matching a request to a scenario: conditions (`conditions`), string tests (`text`), the
indexed search and the closest-miss explanation (`index`)."""

from mockserver.matching.conditions import (
    ANSWER_PARAMS,
    KINDS,
    MATCH_KEYS,
    PART_NAMES,
    Condition,
    HeaderIs,
    MessagesAre,
    ModelIs,
    parse_match,
)
from mockserver.matching.index import Candidate, Matcher, Miss
from mockserver.matching.text import Hint, Pattern, Text, parse_text
from mockserver.normal import json_difference, normal_json

__all__ = [
    "ANSWER_PARAMS",
    "KINDS",
    "MATCH_KEYS",
    "PART_NAMES",
    "Candidate",
    "Condition",
    "HeaderIs",
    "Hint",
    "Matcher",
    "MessagesAre",
    "Miss",
    "ModelIs",
    "Pattern",
    "Text",
    "json_difference",
    "normal_json",
    "parse_match",
    "parse_text",
]
