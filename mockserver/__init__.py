"""mockserver: a local mock of OpenAI's chat completions API, scripted by YAML scenarios."""

__version__ = "0.1.0"
