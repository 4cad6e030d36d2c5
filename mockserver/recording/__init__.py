"""Record and replay: a proxy that writes what an upstream answers as scenario files.

`proxy` is the `mockserver record` app; `upstream` calls the real API with `http.client` (and
holds the header rules the proxy shares); `exchange` captures a request and its response as it
passes; `match_on` derives the recorded `match:`; `responses` reads a Responses API reply into
reply keys and keeps the conversations `previous_response_id` continues; `scrub` keeps secrets
off disk; `cassette` renders and writes scenario files atomically; `forwarding` is the engine's
`on_miss` hook that records inside a test process; `vcr` converts vcrpy cassettes.
"""
