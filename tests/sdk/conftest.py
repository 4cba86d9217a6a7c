"""Fixtures for the SDK tests: the mock Gemini API and the real gemini-balance binary
(all-in-one, SQLite in a temporary folder, keys from the environment), as a user runs it."""

import itertools
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("GB_BIN_DIR", ROOT / "target" / "debug"))
CLIENT_TOKEN = "sk-sdk-client"
ADMIN_TOKEN = "sk-sdk-admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, headers=None) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


_keys_made = itertools.count()


def new_key() -> str:
    """A key of Google's shape (39 characters) whose masked form (first 6 and last 4) is its
    own in this process: it ends with a counter, so two keys never look alike in a listing."""
    return "AIzaSy" + uuid.uuid4().hex.upper()[:29] + f"{next(_keys_made) % 10000:04d}"


class Mock:
    def __init__(self, base: str):
        self.base = base

    def calls(self):
        with urllib.request.urlopen(f"{self.base}/_mock/calls") as answer:
            return json.load(answer)

    def set_behavior(self, key: str, behavior: dict) -> None:
        request = urllib.request.Request(
            f"{self.base}/_mock/keys/{key}",
            data=json.dumps(behavior).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request).close()


class Gateway:
    def __init__(self, url: str, keys, process):
        self.url = url
        self.keys = keys
        self.process = process

    def reset_keys(self) -> None:
        """Back to a healthy pool through the admin API (clears cooldowns and failures)."""
        request = urllib.request.Request(
            f"{self.url}/gemini/v1beta/reset-all-fail-counts",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:
            assert json.load(answer)["success"] is True


@pytest.fixture(scope="session")
def mock():
    port = free_port()
    process = subprocess.Popen([str(BIN_DIR / "mock-gemini"), f"127.0.0.1:{port}"])
    try:
        wait_until(f"http://127.0.0.1:{port}/_mock/calls", process)
        yield Mock(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_gateway(mock, workdir: Path, keys, log_file=None, **extra_env):
    """Starts the real binary, all-in-one, in `workdir`; returns (process, url, metrics_url).
    Its log lines go to `log_file` (an open file) when given."""
    port, metrics_port = free_port(), free_port()
    env = dict(
        os.environ,
        API_KEYS=json.dumps(keys),
        ALLOWED_TOKENS=CLIENT_TOKEN,
        AUTH_TOKEN=ADMIN_TOKEN,
        BASE_URL=f"{mock.base}/v1beta",
        GATEWAY_ADDR=f"127.0.0.1:{port}",
        METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        CHECK_INTERVAL_HOURS="0",
        LOG_LEVEL="warn",
    )
    # A test names its own database and key when it wants one (Postgres).
    env.pop("DATABASE_URL", None)
    env.pop("ENCRYPTION_KEY", None)
    env.update(extra_env)
    process = subprocess.Popen([str(BIN_DIR / "gemini-balance")], cwd=workdir, env=env, stdout=log_file, stderr=log_file)
    wait_until(f"http://127.0.0.1:{port}/health", process)
    return process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.fixture(scope="session")
def gateway(mock, tmp_path_factory):
    """The gateway's base URL; its pool holds two keys."""
    workdir = tmp_path_factory.mktemp("gateway")
    keys = [new_key(), new_key()]
    # Started in an empty folder: the default SQLite file and its key land in ./data/.
    process, url, _ = start_gateway(mock, workdir, keys)
    try:
        assert (workdir / "data" / "gemini-balance.db").exists()
        assert (workdir / "data" / "encryption.key").exists()
        yield Gateway(url, keys, process)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0, "the gateway exits cleanly on SIGTERM"


@pytest.fixture(scope="session")
def console(mock, tmp_path_factory):
    """The console's tests' gateway of their own (three keys): its URL and keys."""
    workdir = tmp_path_factory.mktemp("console")
    keys = [new_key(), new_key(), new_key()]
    process, url, _ = start_gateway(mock, workdir, keys)
    try:
        yield {"url": url, "keys": keys, "process": process}
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    from console_support import ARTIFACTS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        browser.close()
