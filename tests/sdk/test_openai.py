"""The official `openai` SDK, unchanged, against the gateway's OpenAI-format routes: only the
base URL and the API key differ from talking to OpenAI."""

import base64
import io
import json
import time
import urllib.request
import struct
import wave

import openai
import pytest

from conftest import ADMIN_TOKEN, CLIENT_TOKEN

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(api_key=CLIENT_TOKEN, base_url=f"{gateway.url}/v1", max_retries=0)


def test_chat(client):
    answer = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hello sdk"}]
    )
    assert answer.choices[0].message.content == "Echo: hello sdk"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens == 2


def test_chat_stream(client):
    stream = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == 3


def test_tool_call_round_trip(client, mock):
    messages = [{"role": "user", "content": "Lisbon"}]
    first = client.chat.completions.create(model="gemini-3-pro-preview", messages=messages, tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Lisbon"}
    # The SDK's own model object goes back as the assistant turn, as a user's code would do.
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 19})})
    second = client.chat.completions.create(model="gemini-3-pro-preview", messages=messages, tools=TOOLS)
    assert "celsius" in second.choices[0].message.content
    sent = mock.calls()[-1]["body"]
    assert sent["contents"][1]["parts"][0]["thoughtSignature"] == "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
    assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"celsius": 19}


def test_image_as_data_url(client):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    answer = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert "saw image/png" in answer.choices[0].message.content


def test_json_mode(client):
    answer = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "give json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(answer.choices[0].message.content) == {"echo": "Echo: give json"}


def test_embeddings(client):
    floats = client.embeddings.create(model="gemini-embedding-001", input=["alpha", "beta"], dimensions=6)
    assert [len(item.embedding) for item in floats.data] == [6, 6]
    # The SDK asks for base64 by default when numpy is absent and decodes it; ask explicitly.
    encoded = client.embeddings.with_raw_response.create(
        model="gemini-embedding-001", input="alpha", dimensions=6, encoding_format="base64"
    )
    raw = json.loads(encoded.text)["data"][0]["embedding"]
    decoded = struct.unpack("<6f", base64.b64decode(raw))
    assert all(abs(a - b) < 1e-6 for a, b in zip(decoded, floats.data[0].embedding))


def test_models(client):
    ids = [model.id for model in client.models.list()]
    assert "gemini-2.5-flash" in ids
    assert "gemini-2.5-flash-search" in ids
    assert client.models.retrieve("gemini-2.5-pro").id == "gemini-2.5-pro"


def test_image_generation(client):
    images = client.images.generate(prompt="a lighthouse", n=2, size="1792x1024", response_format="b64_json")
    assert len(images.data) == 2
    assert base64.b64decode(images.data[0].b64_json).startswith(b"\x89PNG")


def test_speech_is_a_valid_wav(client):
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello from the gateway")
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getframerate() == 24000
        assert wav.getsampwidth() == 2
        assert wav.getnframes() == 2400


def test_errors(gateway, client, mock):
    stranger = openai.OpenAI(api_key="wrong", base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gemini-2.5-flash", messages=[])
    assert bad.value.body["param"] == "messages"
    for key in gateway.keys:
        mock.set_behavior(key, {"behavior": "quota", "retry_delay_seconds": 30})
    try:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    finally:
        for key in gateway.keys:
            mock.set_behavior(key, {"behavior": "ok"})
        gateway.reset_keys()


def test_a_managed_token_meets_its_rules_as_the_sdks_errors(gateway):
    """A managed client token (POST /api/tokens) in the SDK: its model rule is a
    PermissionDeniedError, its request rate a RateLimitError carrying Retry-After."""
    request = urllib.request.Request(
        f"{gateway.url}/api/tokens",
        data=json.dumps({"name": "sdk", "models": ["gemini-2.5-flash"], "rpm": 2}).encode(),
        headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201
        token = json.load(answer)["token"]
    managed = openai.OpenAI(api_key=token, base_url=f"{gateway.url}/v1", max_retries=0)
    hello = [{"role": "user", "content": "hi"}]
    deadline = time.time() + 5
    while True:  # the gateway hears of the new token through the keys service's stream
        try:
            managed.chat.completions.create(model="gemini-2.5-flash", messages=hello)
            break
        except openai.AuthenticationError:
            assert time.time() < deadline, "the new token was never accepted"
            time.sleep(0.05)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        managed.chat.completions.create(model="gemini-2.5-pro", messages=hello)
    assert "gemini-2.5-pro" in denied.value.message
    with pytest.raises(openai.RateLimitError) as limited:
        managed.chat.completions.create(model="gemini-2.5-flash", messages=hello)
    assert 0 < int(limited.value.response.headers["retry-after"]) <= 60
    assert "requests per minute" in limited.value.message


def test_passthrough_to_googles_openai_layer(gateway):
    passthrough = openai.OpenAI(api_key=CLIENT_TOKEN, base_url=f"{gateway.url}/openai/v1", max_retries=0)
    answer = passthrough.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Echo: hi"
    streamed = passthrough.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "Echo: a b"


# The Responses API, as OpenAI's own agents and the Agents SDK call it.

RESPONSE_TOOLS = [
    {
        "type": "function",
        "name": "weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def test_responses_create_and_previous_response_id(client):
    first = client.responses.create(model="gemini-2.5-flash", input="hello responses", instructions="be brief")
    assert first.output_text == "Echo: hello responses"
    assert first.status == "completed"
    assert first.usage.input_tokens == 2
    again = client.responses.retrieve(first.id)
    assert again.output_text == first.output_text
    second = client.responses.create(model="gemini-2.5-flash", input="and more", previous_response_id=first.id)
    assert second.output_text == "Echo: and more"
    assert second.previous_response_id == first.id
    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_responses_stream(client):
    stream = client.responses.create(model="gemini-2.5-flash", input="one two three", stream=True)
    events = list(stream)
    assert events[0].type == "response.created"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "Echo: one two three"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Echo: one two three"


def test_responses_stream_helper(client):
    with client.responses.stream(model="gemini-2.5-flash", input="four five") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Echo: four five"


def test_responses_function_call_round_trip(client):
    first = client.responses.create(model="gemini-3-pro-preview", input="Paris", tools=RESPONSE_TOOLS)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="gemini-3-pro-preview",
        previous_response_id=first.id,
        tools=RESPONSE_TOOLS,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21 degrees"}],
    )
    assert "21 degrees" in second.output_text
    # Without storing, the items given back whole (reasoning with its encrypted content).
    third = client.responses.create(
        model="gemini-3-pro-preview",
        store=False,
        tools=RESPONSE_TOOLS,
        input=[{"role": "user", "content": "Paris"}]
        + [item.model_dump(exclude_none=True) for item in first.output]
        + [{"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}],
    )
    assert "22 degrees" in third.output_text


def test_responses_structured_output(client):
    answer = client.responses.create(
        model="gemini-2.5-flash",
        input="shape",
        text={"format": {"type": "json_schema", "name": "echo", "schema": {"type": "object", "properties": {"echo": {"type": "string"}}}}},
    )
    assert json.loads(answer.output_text)["echo"].startswith("Echo: shape")


def test_files_create_list_retrieve_content_delete_and_a_chat_with_the_file(client, mock):
    """`client.files` unchanged, and a chat whose message carries the uploaded file."""
    content = b"%PDF-1.4\n" + bytes(range(256)) * 400
    created = client.files.create(file=("report.pdf", content, "application/pdf"), purpose="user_data")
    assert created.id.startswith("file-")
    assert created.bytes == len(content)
    assert created.purpose == "user_data"
    assert created.filename == "report.pdf"
    assert created.id in [listed.id for listed in client.files.list()]
    assert client.files.retrieve(created.id).bytes == len(content)
    assert client.files.content(created.id).read() == content

    answer = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is in this file"},
            {"type": "file", "file": {"file_id": created.id}},
        ]}],
    )
    assert answer.choices[0].message.content.startswith("Echo:")
    reference = mock.calls()[-1]["body"]["contents"][0]["parts"][1]["fileData"]
    assert "/v1beta/files/mock" in reference["fileUri"], reference
    assert reference["mimeType"] == "application/pdf"

    deleted = client.files.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
