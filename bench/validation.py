"""Micro-benchmark of request validation (a script, not a test): µs per `parse_chat_request`.

Requests timed:

  small      2 text messages (system + user), nothing else
  mixed      5 messages of mixed parts: a system message; a user message with text, an
             image_url and an input_audio part; the assistant's tool call; its tool result;
             a user message with text and a file part (plus `tools`)
  mixed+     `mixed` with the parameters a typical client sends too (temperature, max tokens,
             stream + stream_options, tool_choice, response_format json_schema)
  big-image  `small` with a 1 MiB base64 image: the data is not scanned

Each is timed with `decode_body` (JSON parsing included) and without it. Times are CPU time
of this process (`time.process_time`), so other work on a busy machine does not count, and the
best of `--repeat` runs is reported, as timeit recommends (the others measure noise).

    python bench/validation.py [--number 20000] [--repeat 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.validation import decode_body, parse_chat_request

WAV = base64.b64encode(b"RIFF" + bytes(40)).decode()
SMALL: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
}
MIXED: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture, and what do you hear?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                },
                {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": "18C and sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise the attached report."},
                {"type": "file", "file": {"file_id": "file-abc123", "filename": "report.pdf"}},
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ],
}
MIXED_PLUS: dict[str, Any] = {
    **MIXED,
    "temperature": 0.2,
    "max_completion_tokens": 500,
    "stream": True,
    "stream_options": {"include_usage": True},
    "tool_choice": "auto",
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
        },
    },
}
BIG_IMAGE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        SMALL["messages"][0],
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe it."},
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(bytes(786_432)).decode()
                    },
                },
            ],
        },
    ],
}
CASES = {"small": SMALL, "mixed": MIXED, "mixed+": MIXED_PLUS, "big-image": BIG_IMAGE}


def best_us(call: Any, number: int, repeat: int) -> float:
    runs = timeit.repeat(call, number=number, repeat=repeat, timer=time.process_time)
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best one counts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    print(
        f"python {platform.python_version()} on {platform.machine()}: CPU µs per call, "
        f"best of {args.repeat} runs of {args.number}"
    )
    print(f"{'request':<10} {'bytes':>8} {'parse µs':>10} {'decode+parse µs':>16}")
    for name, body in CASES.items():
        raw = json.dumps(body).encode()
        parse_chat_request(body)  # valid, or this raises
        number = args.number if len(raw) < 100_000 else max(args.number // 100, 10)
        parse = best_us(lambda body=body: parse_chat_request(body), number, args.repeat)
        both = best_us(lambda raw=raw: parse_chat_request(decode_body(raw)), number, args.repeat)
        results[name] = {"bytes": len(raw), "parse_us": parse, "decode_parse_us": both}
        print(f"{name:<10} {len(raw):>8} {parse:>10.2f} {both:>16.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
