"""Bundle the Responses API's schemas from OpenAI's OpenAPI document for the tests.

Run from the repository root (needs PyYAML):

    python tests/data/bundle_responses.py ../shared/spec/openai-openapi.yaml

It writes `tests/data/responses.schema.json`: `Response`, `ResponseStreamEvent`,
`ResponseItemList`, `CreateResponse`, `ErrorResponse` and `TokenCountsResource` with every schema they reference, under
`$defs`, refs rewritten to point inside, `nullable: true` turned into JSON Schema null types (as
`chat-completions.schema.json` is made).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = (
    "Response",
    "ResponseStreamEvent",
    "ResponseItemList",
    "CreateResponse",
    "ErrorResponse",
    "TokenCountsResource",
)
PREFIX = "#/components/schemas/"
OUT = Path(__file__).parent / "responses.schema.json"


def _convert(node: Any, found: set[str]) -> Any:
    if isinstance(node, list):
        return [_convert(v, found) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v, found) for k, v in node.items() if k != "nullable"}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith(PREFIX):
        found.add(ref[len(PREFIX) :])
        out["$ref"] = "#/$defs/" + ref[len(PREFIX) :]
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def main(spec: str) -> None:
    schemas = yaml.load(Path(spec).read_text(), Loader=yaml.CSafeLoader)["components"]["schemas"]
    todo, done = list(ROOTS), {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        found: set[str] = set()
        done[name] = _convert(schemas[name], found)
        todo.extend(found - done.keys())
    bundle = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            "Subset of components.schemas from openai/openai-openapi openapi.yaml (commit "
            "f85dbe223d40e1a31cba812ab2d755c7e98a92a3) for the Responses API, made by "
            "tests/data/bundle_responses.py; refs rewritten to $defs, nullable: true turned "
            "into JSON Schema null types."
        ),
        "$defs": dict(sorted(done.items())),
    }
    OUT.write_text(json.dumps(bundle, indent=1, sort_keys=False) + "\n")
    print(f"{OUT}: {len(done)} schemas")


if __name__ == "__main__":
    main(sys.argv[1])
