"""SSE encoding and decoding: framing, line ends, comments, chunks split anywhere."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mockserver import sse


def test_parse_handles_comments_crlf_multiline_and_event_names():
    raw = b'data: {"a": 1}\n\n: ping\n\ndata: x\r\ndata: y\r\n\r\nevent: error\ndata: {"error":1}\n\ndata: [DONE]\n\n'
    assert sse.parse(raw) == [
        sse.Event('{"a": 1}'),
        sse.Event("x\ny"),
        sse.Event('{"error":1}', "error"),
        sse.Event("[DONE]"),
    ]


def test_a_stream_without_a_final_blank_line_still_yields_its_last_event():
    assert sse.parse(b"data: last") == [sse.Event("last")]


@given(
    st.lists(st.text(st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=5),
    st.data(),
)
def test_events_survive_any_split(datas, draw):
    raw = "".join(sse.encode_event(d) for d in datas).encode()
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(raw)), max_size=4)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    normalized = [d.replace("\r\n", "\n").replace("\r", "\n") for d in datas]
    assert [e.data for e in sse.iter_events(pieces)] == normalized
