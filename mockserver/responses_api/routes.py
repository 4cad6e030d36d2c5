"""The Responses API's routes: `POST /v1/responses` through the engine's `answer` seam, and the
stored-response routes (`GET` / `DELETE /v1/responses/{id}`, `GET .../input_items`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

from mockserver import completions, memo, sse
from mockserver.errors import ApiError
from mockserver.ids import Clock, IdFactory
from mockserver.memo import TEMPLATE_CREATED
from mockserver.outcome import Outcome
from mockserver.request import ChatRequest, with_headers
from mockserver.responses import (
    JSON_TYPE,
    SSE_TYPE,
    error_outcome,
    json_outcome,
    reply_headers,
    unknown_url,
)
from mockserver.responses_api import background, encoder
from mockserver.responses_api.background import Pending
from mockserver.responses_api.reader import check_input, parse_responses_request
from mockserver.responses_api.store import ResponseStore, Stored
from mockserver.responses_api.template import REQUEST, Marks, ResponseTemplate
from mockserver.scenarios import Reply, Scenario
from mockserver.validation import decode_body
from mockserver.validation.strict import check_strict
from mockserver.wire import JSON

if TYPE_CHECKING:
    from mockserver.engine import MockEngine

Headers = tuple[tuple[bytes, bytes], ...]
MAX_CONVERSATION_BYTES = 8 * 1024 * 1024
"""The most a `previous_response_id` may bring in (the earlier turns' JSON): a longer
conversation is refused as the live API refuses one over the model's context window, rather
than read again on every turn while other clients wait."""


def too_long(size: int, limit: int) -> ApiError:
    return ApiError(
        status=400,
        message=(
            "Your input exceeds the context window of this model. Please adjust your input and "
            f"try again. (mockserver: the earlier turns weigh {size} bytes; the limit is "
            f"{limit} bytes.)"
        ),
        param="input",
        code="context_length_exceeded",
    )


def not_found(response_id: str) -> ApiError:
    return ApiError(
        status=404,
        message=f"Response with id '{response_id[:200]}' not found.",
        param=None,
        code=None,
    )


def not_background() -> ApiError:
    return ApiError(
        status=400,
        message="Only responses created with background=true can be cancelled.",
        param=None,
        code=None,
    )


def previous_not_found(response_id: str) -> ApiError:
    return ApiError(
        status=400,
        message=f"Previous response with id '{response_id[:200]}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


class ResponsesApi:
    """The Responses API of one engine: its routes and its stored responses."""

    def __init__(
        self, engine: MockEngine, ids: IdFactory, clock: Clock, padding: Sequence[str]
    ) -> None:
        self.engine = engine
        self._padding = padding
        self.store = ResponseStore()
        self.pending = Pending()
        self.max_conversation = MAX_CONVERSATION_BYTES
        self._parsed: memo.Bounded[bytes, ChatRequest] = memo.Bounded(1024, weigh=memo.body_weight)
        self._templates: memo.Bounded[tuple[bytes, int], ResponseTemplate] = memo.Bounded(
            1024, weigh=lambda key, template: len(key[0]) + template.weight()
        )
        self.templating = True
        """Whether bodies seen again are answered from templates (tests turn it off to compare)."""
        self._local = threading.local()
        """`rendered`: whether this thread's last request was rendered here (else replayed)."""
        self._ids = ids
        self._clock = clock

    def reset(self) -> None:
        self.store.clear()
        self.pending.clear()

    # -- routing -----------------------------------------------------------------------------

    def handle(
        self, method: str, route: str, body: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> Outcome:
        """`route` is the path without `/v1` (`/responses`, `/responses/{id}`, ...)."""
        if route == "/responses" and method == "POST":
            self._local.rendered = False
            answer = self.engine.answer(
                body, tuple(headers), self._parse, self._render, api="responses"
            )
            outcome = answer if isinstance(answer, Outcome) else answer()
            if outcome.status == 200 and not self._local.rendered:
                self._keep_replayed(body, outcome)
            return outcome
        return self._other(method, route, body, tuple(headers))

    def _other(self, method: str, route: str, body: bytes, headers: Headers) -> Outcome:
        """The routes besides creating a response."""
        parts = route.split("/")  # "", "responses", id[, "input_items" | "cancel"]
        if method == "POST":
            if route == "/responses/input_tokens":
                return self._input_tokens(body, headers)
            if len(parts) == 4 and parts[2] and parts[3] == "cancel":
                return self._cancel(unquote(parts[2]))
        if len(parts) == 3 and parts[2]:
            response_id = unquote(parts[2])
            if method == "GET":
                return self._get(response_id)
            if method == "DELETE":
                return self._delete(response_id)
        if len(parts) == 4 and parts[2] and parts[3] == "input_items" and method == "GET":
            return self._input_items(unquote(parts[2]))
        return error_outcome(unknown_url(method, "/v1" + route), self._ids.request())

    def _get(self, response_id: str) -> Outcome:
        stored = self.store.get(response_id)
        if stored is None:
            return error_outcome(not_found(response_id), self._ids.request())
        response = encoder.loads(stored.response)
        status = self.pending.poll(response_id)
        if status is not None and isinstance(response, dict):
            response = background.snapshot(response, status)
        return json_outcome(response, self._ids.request())

    def _cancel(self, response_id: str) -> Outcome:
        """Cancel a background response: a queued or running one becomes `cancelled`; a
        finished one is answered as it is; any other response cannot be cancelled."""
        stored = self.store.get(response_id)
        if stored is None:
            return error_outcome(not_found(response_id), self._ids.request())
        response = encoder.loads(stored.response)
        assert isinstance(response, dict)
        if response.get("background") is not True:
            return error_outcome(not_background(), self._ids.request())
        if self.pending.stop(response_id):
            response = background.snapshot(response, "cancelled")
            kept = Stored.of(encoder.dumps(response), stored.input_items)
            self.store.put(response_id, kept)
        return json_outcome(response, self._ids.request())

    def _input_tokens(self, raw: bytes, headers: Headers) -> Outcome:
        """`POST /v1/responses/input_tokens`: the request's input counted with the tokenizer
        `usage` counts with (`model` may be left out here)."""
        try:
            body = decode_body(raw)
            if body.get("model") is None:
                body = {**body, "model": "mockserver"}
            check_input(body)
            request = parse_responses_request(body, headers, self._history(body))
            if self.engine.config.strict:
                check_strict(request)
        except ApiError as error:
            return error_outcome(error, self._ids.request())
        count = {"object": "response.input_tokens", "input_tokens": request.prompt_tokens}
        return json_outcome(count, self._ids.request())

    def _delete(self, response_id: str) -> Outcome:
        if not self.store.delete(response_id):
            return error_outcome(not_found(response_id), self._ids.request())
        self.pending.stop(response_id)
        body = {"id": response_id, "object": "response", "deleted": True}
        return json_outcome(body, self._ids.request())

    def _input_items(self, response_id: str) -> Outcome:
        stored = self.store.get(response_id)
        if stored is None:
            return error_outcome(not_found(response_id), self._ids.request())
        items = encoder.loads(stored.input_items)
        assert isinstance(items, list)
        data = list(reversed(items))  # `order` defaults to `desc`: the newest first
        first = data[0]["id"] if data and isinstance(data[0], dict) else None
        last = data[-1]["id"] if data and isinstance(data[-1], dict) else None
        body = {"object": "list", "data": data, "first_id": first, "last_id": last}
        body["has_more"] = False
        return json_outcome(body, self._ids.request())

    # -- POST /v1/responses ------------------------------------------------------------------

    def _history(self, body: dict[str, JSON]) -> list[JSON]:
        """The items a `previous_response_id` continues from: its input items, its output."""
        previous = body.get("previous_response_id")
        if previous is None or type(previous) is not str:
            return []
        stored = self.store.get(previous)
        if stored is None:
            raise previous_not_found(previous)
        if stored.size > self.max_conversation:
            raise too_long(stored.size, self.max_conversation)
        items = encoder.loads(stored.input_items)
        response = encoder.loads(stored.response)
        assert isinstance(items, list)
        assert isinstance(response, dict)
        output = response["output"]
        assert isinstance(output, list)
        return [*items, *output]

    def _parse(self, raw: bytes, headers: Headers) -> ChatRequest:
        """The request a body holds; a body seen before is read once (see `memo`), unless it
        continues a stored response (what that brings in may have changed)."""
        request = self._parsed.get(raw)
        if request is None:
            body = decode_body(raw)
            check_input(body)  # model, input: refused before the previous response is looked up
            request = parse_responses_request(body, (), self._history(body))
            if "previous_response_id" not in body and self._parsed.offer(raw, len(raw)):
                self._parsed.put(raw, request)
        if headers and self.engine.needs_headers:  # as the engine's own `_parse`
            return with_headers(request, headers)
        return request

    def _keep_replayed(self, raw: bytes, outcome: Outcome) -> None:
        """A recorded (`raw`) reply was replayed: keep the response it carries (the body, or a
        stream's `response.completed`) as a rendered one is kept, so `GET /v1/responses/{id}`
        and a client's next `previous_response_id` find it."""
        try:
            body = decode_body(raw)
            if body.get("store") is False:
                return
            response = _carried(outcome)
            if response is None:
                return
            inputs = [*self._history(body), *self._new_items(body, self._ids.item)]
        except (ApiError, ValueError):
            return
        self.store.put(
            str(response["id"]), Stored.of(encoder.dumps(response), encoder.dumps(inputs))
        )

    def _new_items(self, body: dict[str, JSON], new_id: Callable[[str], str]) -> list[JSON]:
        """The request's own input as stored items (each with an id)."""
        value = body.get("input")
        if isinstance(value, str):
            value = [{"type": "message", "role": "user", "content": value}]
        items: list[JSON] = []
        for raw in value or ():
            if not isinstance(raw, dict):
                continue
            item = dict(raw)
            kind = item.setdefault("type", "message")
            if kind == "message":
                content = item.get("content")
                if isinstance(content, str):
                    part = "output_text" if item.get("role") == "assistant" else "input_text"
                    extra: dict[str, JSON] = (
                        {"annotations": [], "logprobs": []} if part == "output_text" else {}
                    )
                    item["content"] = [{"type": part, "text": content, **extra}]
                item.setdefault("status", "completed")
            if "id" not in item:
                prefix = {"message": "msg_", "function_call": "fc_"}.get(str(kind), "item_")
                item["id"] = new_id(prefix)
            items.append(item)
        return items

    def _render(
        self, request: ChatRequest, scenario: Scenario, reply: Reply, request_id: str, raw: bytes
    ) -> Outcome:
        """The reply, and the response stored; a body seen before (that continues no stored
        response) is filled in from its template (see `template`)."""
        self._local.rendered = True
        body = request.body
        if (
            body.get("previous_response_id") is not None
            or body.get("background") is True
            or not self.templating
        ):
            return self._fresh(request, scenario, reply, request_id)
        key = (raw, id(reply))
        template = self._templates.get(key)
        if template is None:
            if not self._templates.offer(key, len(raw)):
                return self._fresh(request, scenario, reply, request_id)
            marks = Marks()
            _, marked, marked_stored = self._render_with(
                request, scenario, reply, marks.mark(REQUEST), ids=marks, created=TEMPLATE_CREATED
            )
            template = ResponseTemplate.of(marks, marked, marked_stored)
            self._templates.put(key, template)
        outcome, response_id, stored = template.fill(self._ids.draw, self._clock(), request_id)
        if stored is not None:
            self.store.put(response_id, stored)
        return outcome

    def _fresh(
        self, request: ChatRequest, scenario: Scenario, reply: Reply, request_id: str
    ) -> Outcome:
        """The reply rendered afresh, and the response stored."""
        response_id, outcome, stored = self._render_with(
            request, scenario, reply, request_id, ids=self._ids, created=self._clock()
        )
        if stored is not None:
            self.store.put(response_id, Stored.of(*stored))
        return outcome

    def _render_with(
        self,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        request_id: str,
        *,
        ids: IdFactory | Marks,
        created: int,
    ) -> tuple[str, Outcome, tuple[bytes, bytes] | None]:
        """(the response id, the outcome, what to store: the response and its input items)."""
        body = request.body
        resolved = completions.resolve(
            request,
            reply,
            created=created,
            tool_call_id=ids.tool_call,
            audio_id=ids.audio,
            where=f"{scenario.name!r} ({scenario.where})",
        )[0]
        status = "incomplete" if resolved.finish_reason == "length" else "completed"
        tier = reply.service_tier or request.service_tier or "default"
        previous = body.get("previous_response_id")
        head = encoder.Head(
            id=ids.item("resp_"),
            created_at=created,
            model=reply.model or request.model,
            service_tier="default" if tier == "auto" else tier,
            previous_response_id=previous if isinstance(previous, str) else None,
            store=body.get("store") is not False,
        )
        reasoning = reply.choices[0].reasoning
        top = encoder.logprobs_top(request)
        items = encoder.output_items(resolved, ids.item, status, reasoning, top)
        final = encoder.response_object(
            request,
            head,
            status=status,
            output=items,
            usage_=encoder.usage(request, resolved, reply.usage),
            completed_at=created if status == "completed" else None,
        )
        encoded = encoder.dumps(final)
        stored = None
        if head.store:
            inputs = [*self._history(dict(body)), *self._new_items(dict(body), ids.item)]
            stored = (encoded, encoder.dumps(inputs))
        delay = reply.delay_ms / 1000
        headers = reply_headers(SSE_TYPE if request.stream else JSON_TYPE, request_id, reply)
        if not request.stream:
            if body.get("background") is True:  # answered now, finished after the delay
                self.pending.start(head.id, delay)
                queued = encoder.dumps(background.snapshot(final, "queued"))
                return head.id, Outcome(200, headers, queued), stored
            return head.id, Outcome(200, headers, encoded, delay=delay), stored
        events = encoder.stream_events(
            request,
            head,
            items,
            encoded.decode(),
            reply.stream.chunk_size,
            incomplete=status == "incomplete",
            padding=self._padding,
        )

        def tail(sent: int, error: ApiError) -> str:
            return encoder.failed_events(request, head, sent, error)

        frames = encoder.frames(reply, events, tail, head.model)
        return head.id, Outcome(200, headers, frames=frames, delay=delay), stored


def _carried(outcome: Outcome) -> dict[str, JSON] | None:
    """The finished `response` object a replayed reply carries, if any."""
    if outcome.frames is None:
        found = encoder.loads(outcome.body)
    else:
        found = None
        for event in sse.parse(outcome.content()):
            if '"response.completed"' in event.data or '"response.incomplete"' in event.data:
                data = encoder.loads(event.data.encode())
                if isinstance(data, dict):
                    found = data.get("response")
    if (
        isinstance(found, dict)
        and found.get("object") == "response"
        and type(found.get("id")) is str
    ):
        return found
    return None
