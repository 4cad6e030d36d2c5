import pytest


def test_text_reply_through_the_sdk(live):
    mock = live("""
        version: 1
        scenarios:
          - match: {last_user_message: hi}
            reply: {content: "Hello!"}
    """)
    reply = mock.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Hello!"


@pytest.mark.anyio
async def test_async_stream(live):
    mock = live("""
        version: 1
        scenarios:
          - reply: {content: "one two three"}
    """)
    stream = await mock.aclient.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    parts = [
        c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert parts == ["one", " two", " three"]
