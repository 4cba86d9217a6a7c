"""Claude Code itself (npm `@anthropic-ai/claude-code`, installed by `make agents`), unchanged,
in non-interactive mode against the gateway: only `ANTHROPIC_BASE_URL` and the key differ from
talking to Anthropic. The mock answers a request that declares tools with a call of the first
one, so the run makes a tool round trip: the call, Claude Code's tool result, the final answer."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import CLIENT_TOKEN

CLAUDE = os.environ.get("CLAUDE_BIN", "")


@pytest.fixture()
def claude(tmp_path):
    if not (CLAUDE and Path(CLAUDE).exists()):
        pytest.fail("CLAUDE_BIN must name Claude Code's binary: run `make agents` (make test does)")
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
        [CLAUDE, "-p", "list the files here", "--output-format", "json", "--tools", "Bash", "--allowedTools", "Bash"],
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
