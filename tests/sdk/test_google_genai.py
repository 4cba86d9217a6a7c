"""Google's own `google-genai` SDK, unchanged, against the gateway: it only gets a base URL
and a client token instead of Google's endpoint and a Gemini key."""

import pytest
from google import genai
from google.genai import errors, types

from conftest import CLIENT_TOKEN


@pytest.fixture()
def client(gateway):
    return genai.Client(api_key=CLIENT_TOKEN, http_options=types.HttpOptions(base_url=gateway.url))


def test_generate(client, mock):
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hello from the sdk")
    assert answer.text == "Echo: hello from the sdk"
    assert answer.usage_metadata.prompt_token_count == 4
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert mock.calls()[-1]["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_generate_with_config_passes_through(client, mock):
    config = types.GenerateContentConfig(
        system_instruction="be brief",
        temperature=0.2,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
    )
    client.models.generate_content(model="gemini-2.5-flash", contents="configured", config=config)
    sent = mock.calls()[-1]["body"]
    assert sent["generationConfig"]["temperature"] == 0.2
    thinking = sent["generationConfig"]["thinkingConfig"]
    # The SDK picks the field spelling (Google accepts both); the gateway keeps it as sent.
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 0, sent
    assert sent["systemInstruction"]["parts"][0]["text"] == "be brief"


def test_stream(client):
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="one two three four"))
    assert len(chunks) == 3
    assert "".join(chunk.text or "" for chunk in chunks) == "Echo: one two three four"


def test_count_tokens(client):
    answer = client.models.count_tokens(model="gemini-2.5-flash", contents="five little words right here")
    assert answer.total_tokens == 5


def test_embed(client):
    answer = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=12),
    )
    assert len(answer.embeddings) == 2
    assert all(len(embedding.values) == 12 for embedding in answer.embeddings)


def test_v1beta_as_well(gateway):
    pinned = genai.Client(
        api_key=CLIENT_TOKEN, http_options=types.HttpOptions(base_url=gateway.url, api_version="v1beta")
    )
    assert pinned.models.generate_content(model="gemini-2.5-flash", contents="beta").text == "Echo: beta"
    streamed = "".join(c.text or "" for c in pinned.models.generate_content_stream(model="gemini-2.5-flash", contents="b c"))
    assert streamed == "Echo: b c"


def test_models(client):
    names = [model.name for model in client.models.list()]
    assert "models/gemini-2.5-flash" in names
    assert "models/gemini-pro-vision" not in names
    assert client.models.get(model="gemini-2.5-pro").display_name == "Gemini 2.5 Pro"


def test_wrong_token_is_refused(gateway):
    stranger = genai.Client(api_key="not-a-token", http_options=types.HttpOptions(base_url=gateway.url))
    with pytest.raises(errors.ClientError) as refused:
        stranger.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert refused.value.code == 401


def test_client_error_reaches_the_sdk_as_google_sent_it(client):
    with pytest.raises(errors.ClientError) as failed:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert failed.value.code == 404
    assert failed.value.status == "NOT_FOUND"


def test_quota_on_every_key_is_a_429(client, gateway, mock):
    for key in gateway.keys:
        mock.set_behavior(key, {"behavior": "quota", "retry_delay_seconds": 30})
    try:
        with pytest.raises(errors.ClientError) as failed:
            client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert failed.value.code == 429
        assert failed.value.status == "RESOURCE_EXHAUSTED"
    finally:
        for key in gateway.keys:
            mock.set_behavior(key, {"behavior": "ok"})
        gateway.reset_keys()


def test_files_upload_get_list_generate_delete(client, mock, tmp_path):
    """`client.files` unchanged: a resumable upload in 8 MB chunks (a 9 MB file takes two),
    get, list, a generation that references the file (the gateway gives the key it runs on a
    copy of its own at Google), delete."""
    path = tmp_path / "report.pdf"
    content = bytes(range(256)) * (9 * 4096)
    path.write_bytes(content)
    uploaded = client.files.upload(file=path, config={"mime_type": "application/pdf", "display_name": "the report"})
    assert uploaded.name.startswith("files/file-")
    assert uploaded.size_bytes == len(content)
    assert uploaded.mime_type == "application/pdf"
    assert uploaded.display_name == "the report"
    assert uploaded.state == types.FileState.ACTIVE

    got = client.files.get(name=uploaded.name)
    assert got.uri == uploaded.uri
    assert uploaded.name in [listed.name for listed in client.files.list()]

    answer = client.models.generate_content(model="gemini-2.5-flash", contents=[uploaded, "summarize this file"])
    assert answer.text.startswith("Echo:")
    sent = mock.calls()[-1]
    part = sent["body"]["contents"][0]["parts"][0]
    # The SDK picks the spelling (Google accepts both); the gateway keeps it.
    reference = part.get("fileData", part.get("file_data"))
    assert "/v1beta/files/mock" in reference.get("fileUri", reference.get("file_uri")), reference
    assert reference.get("mimeType", reference.get("mime_type")) == "application/pdf"

    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as refused:
        client.files.get(name=uploaded.name)
    assert refused.value.code == 403
