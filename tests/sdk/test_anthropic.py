"""The official `anthropic` SDK, unchanged, against the gateway's Messages routes: only the
base URL and the API key differ from talking to Anthropic. Claude model names are served by
the Gemini models of ANTHROPIC_MODEL_MAP."""

import base64

import anthropic
import pytest

from conftest import CLIENT_TOKEN

WEATHER = {
    "name": "weather",
    "description": "Current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


@pytest.fixture()
def client(gateway):
    gateway.reset_keys()
    return anthropic.Anthropic(api_key=CLIENT_TOKEN, base_url=gateway.url, max_retries=0)


def test_message(client, mock):
    message = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello sdk"}],
    )
    assert message.model == "claude-sonnet-4-5"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello sdk"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 2
    assert message.usage.output_tokens == 3
    assert mock.calls()[-1]["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"


def test_stream_helpers_assemble_the_message(client):
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=256,
        messages=[{"role": "user", "content": "one two three four"}],
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Echo: one two three four"
    assert final.content[0].text == "Echo: one two three four"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


def test_tool_use_round_trip(client, mock):
    first = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Paris"}],
    )
    assert first.stop_reason == "tool_use"
    tool_use = next(block for block in first.content if block.type == "tool_use")
    assert tool_use.name == "weather"
    assert tool_use.input == {"city": "Paris"}
    second = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "21 degrees"}],
            },
        ],
    )
    assert "21 degrees" in second.content[0].text
    sent = mock.calls()[-1]["body"]
    assert sent["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "weather",
        "response": {"result": "21 degrees"},
    }


def test_thinking_blocks_given_back_on_gemini_3(gateway, mock):
    client = anthropic.Anthropic(
        api_key=CLIENT_TOKEN,
        base_url=f"{gateway.url}/anthropic",
        max_retries=0,
    )
    # A Gemini name passes as it is: Gemini 3 wants its thought signatures back.
    first = client.messages.create(
        model="gemini-3-pro-preview",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Rome"}],
    )
    thinking = first.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "Thinking it over."
    assert thinking.signature
    tool_use = first.content[1]
    second = client.messages.create(
        model="gemini-3-pro-preview",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Rome"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
        ],
    )
    assert any(block.type == "text" and "sunny" in block.text for block in second.content)
    model_turn = mock.calls()[-1]["body"]["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == thinking.signature


def test_image(client):
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    )
    assert "[saw image/png of about" in message.content[0].text


def test_count_tokens(client):
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "one two three"}],
    )
    assert counted.input_tokens == 3


def test_errors_are_the_sdks_exceptions(client, gateway, mock):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(api_key="sk-wrong", base_url=gateway.url, max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="gemini-0-nothing", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "hologram"}]}],
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    for key in gateway.keys:
        mock.set_behavior(key, {"behavior": "server_error", "status": 503})
    try:
        with pytest.raises(anthropic.OverloadedError) as overloaded:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
        assert overloaded.value.status_code == 529
        assert overloaded.value.body["error"]["type"] == "overloaded_error"
        for key in gateway.keys:
            mock.set_behavior(key, {"behavior": "quota", "retry_delay_seconds": 20})
        gateway.reset_keys()
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
        assert limited.value.response.headers.get("retry-after")
    finally:
        for key in gateway.keys:
            mock.set_behavior(key, {"behavior": "ok"})
        gateway.reset_keys()
