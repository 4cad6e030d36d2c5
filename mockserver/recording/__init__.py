"""Record and replay: a proxy that writes what an upstream answers as scenario files.

`proxy` is the `mockserver record` app; `exchange` captures a request and its response as it
passes; `match_on` derives the recorded `match:`; `scrub` keeps secrets off disk; `cassette`
renders and writes scenario files atomically; `upstream` and `forwarding` talk to the real API;
`vcr` converts vcrpy cassettes.
"""
