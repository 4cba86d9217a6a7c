"""The coding agents and the agent SDK our users run, unchanged, against the binary (npm
packages pinned and installed by `make agents` in AGENTS_DIR): Claude Code (Anthropic's Messages
API), OpenAI's Codex CLI and the Vercel AI SDK's default `openai()` provider (OpenAI's Responses
API). Only the base URL and the key differ from talking to their vendors. The mock answers a
request that declares tools with a call of the first one (every property set to the user's
text), so each run makes a tool round trip: the call, the agent's tool result (an argument error
when the tool wants other types than text: the protocol is what is tested), the final answer."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import CLIENT_TOKEN

AGENTS_DIR = Path(os.environ.get("AGENTS_DIR", ""))
HERE = Path(__file__).resolve().parent


def agent(name: str) -> str:
    binary = AGENTS_DIR / "node_modules" / ".bin" / name
    if not binary.exists():
        pytest.fail(f"AGENTS_DIR must hold the agents ({binary} is missing): run `make agents` (make test does)")
    return str(binary)


@pytest.fixture()
def claude(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return home, work


def test_claude_code_runs_a_tool_round_trip_on_the_pool(claude, gateway, mock):
    home, work = claude
    gateway.reset_keys()
    before = len(mock.calls())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": CLIENT_TOKEN,
        # No telemetry, no update checks, no traffic but the model's.
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        # Declare the tools at once (no deferred-tool placeholder first in the list).
        "ENABLE_TOOL_SEARCH": "false",
    }
    run = subprocess.run(
        [agent("claude"), "-p", "list the files here", "--output-format", "json", "--tools", "Bash", "--allowedTools", "Bash"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["is_error"] is False, result
    assert result["terminal_reason"] == "completed", result
    assert result["num_turns"] == 2, "a tool call, then the answer after its result"
    assert result["usage"]["output_tokens"] > 0
    calls = mock.calls()[before:]
    assert [call["path"] for call in calls] == ["/v1beta/models/gemini-2.5-pro:streamGenerateContent"] * 2, "claude-opus-* is served by gemini-2.5-pro, streamed"
    first, second = calls[0]["body"], calls[1]["body"]
    declared = [d["name"] for tool in first["tools"] for d in tool.get("functionDeclarations", [])]
    assert declared == ["Bash"]
    assert "systemInstruction" in first
    # The second request gives the call back with its thought signature and answers it.
    model_turn, answer_turn = second["contents"][-2], second["contents"][-1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0]["functionCall"]["name"] == "Bash"
    assert model_turn["parts"][0]["thoughtSignature"] == "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
    assert answer_turn["parts"][0]["functionResponse"]["name"] == "Bash"
    # The final answer is the mock's reply to the tool's result, as Claude Code printed it.
    assert result["result"].startswith("Tool results:"), result["result"][:300]


def test_codex_exec_runs_a_tool_round_trip_on_the_pool(gateway, mock, tmp_path):
    gateway.reset_keys()
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "gemini-2.5-flash"\n'
        'model_provider = "gateway"\n'
        "[model_providers.gateway]\n"
        'name = "gateway"\n'
        f'base_url = "{gateway.url}/v1"\n'
        'env_key = "GATEWAY_KEY"\n'
        'wire_api = "responses"\n'
    )
    work = tmp_path / "work"
    work.mkdir()
    before = len(mock.calls())
    run = subprocess.run(
        [agent("codex"), "exec", "--skip-git-repo-check", "--json", "say hi"],
        cwd=work,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "CODEX_HOME": str(home), "GATEWAY_KEY": CLIENT_TOKEN},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    kinds = [event["type"] for event in events]
    assert "turn.completed" in kinds, kinds
    assert "turn.failed" not in kinds and "error" not in kinds, events
    messages = [event["item"]["text"] for event in events if event["type"] == "item.completed" and event["item"]["type"] == "agent_message"]
    assert messages and messages[-1].startswith("Tool results:"), messages
    calls = mock.calls()[before:]
    assert [call["path"] for call in calls] == ["/v1beta/models/gemini-2.5-flash:streamGenerateContent"] * 2
    # Codex keeps nothing at the gateway (store: false) and gives the call back whole.
    model_turn, answer_turn = calls[1]["body"]["contents"][-2], calls[1]["body"]["contents"][-1]
    assert model_turn["parts"][0]["functionCall"]["name"] == "exec_command"
    assert answer_turn["parts"][0]["functionResponse"]["name"] == "exec_command"


def test_ai_sdk_default_provider_text_stream_and_tool(gateway, mock):
    gateway.reset_keys()
    script = (HERE / "agents" / "ai_sdk_client.mjs").read_text()
    if not (AGENTS_DIR / "node_modules" / "@ai-sdk" / "openai").exists():
        pytest.fail("AGENTS_DIR must hold the AI SDK: run `make agents` (make test does)")
    run = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=AGENTS_DIR,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GATEWAY_URL": gateway.url, "GATEWAY_TOKEN": CLIENT_TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["plain"] == "Echo: hello ai sdk"
    assert result["plainUsage"]["inputTokens"] == 3
    assert result["streamed"] == "Echo: one two three"
    # The SDK ran the tool, then sent its result back (by item reference: store is on).
    assert result["executed"] == ["Paris"]
    assert result["steps"] == 2
    assert result["toolText"] == 'Tool results: [{"name":"weather","response":{"celsius":21,"city":"Paris"}}]'
