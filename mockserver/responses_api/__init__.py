"""The Responses API (`POST /v1/responses` and the stored-response routes), one home for it.

The engine stays API-neutral (state, matching, sequences, the resolved reply); this package is
the Responses API's reader and encoder around it:

- `reader`: a request body (and the conversation a `previous_response_id` continues) into the
  typed view matching reads (`ChatRequest` with `api="responses"`), validated as the live API
  validates it;
- `encoder`: a resolved reply into the `response` object and the stream's events;
- `store`: the responses kept with `store: true`, bounded in bytes, reset with the engine;
- `background`: the progress of `background: true` responses (queued, in progress, cancelled);
- `template` and `holes`: a reply rendered once for a body seen again, filled per response;
- `routes`: the routes (`cancel` and `input_tokens` too), wiring them to the engine's `answer`
  seam.
"""

from __future__ import annotations

from mockserver.responses_api.reader import parse_responses_request
from mockserver.responses_api.routes import ResponsesApi

__all__ = ["ResponsesApi", "parse_responses_request"]
