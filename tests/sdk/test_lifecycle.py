"""The binary as an operator runs it: SIGTERM drains an open stream and flushes the outcome
reports before exiting 0, /metrics on METRICS_ADDR reflects real requests, and LOG_LEVEL
changes through the API while it runs."""

import json
import signal
import time
import urllib.request

from conftest import ADMIN_TOKEN, CLIENT_TOKEN, new_key, start_gateway


def post_json(url, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}, method="POST")
    return urllib.request.urlopen(request, timeout=30)


def admin_keys(url):
    request = urllib.request.Request(f"{url}/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["keys"]


def test_sigterm_lets_an_open_stream_finish_and_loses_no_outcome(mock, tmp_path):
    key = new_key()
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log_file:
        process, url, _ = start_gateway(mock, tmp_path, [key], log_file=log_file, LOG_LEVEL="info")
    urllib.request.urlopen(urllib.request.Request(f"{mock.base}/_mock/stream-chunks/20", method="POST")).close()
    urllib.request.urlopen(urllib.request.Request(f"{mock.base}/_mock/stream-delay/50", method="POST")).close()
    try:
        for _ in range(3):
            post_json(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}, {"x-goog-api-key": CLIENT_TOKEN}).close()
        words = " ".join(f"w{i}" for i in range(40))
        stream = post_json(
            f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            {"contents": [{"parts": [{"text": words}]}]},
            {"x-goog-api-key": CLIENT_TOKEN},
        )
        first = stream.readline()
        assert first.startswith(b"data: ")
        process.send_signal(signal.SIGTERM)  # about a second of stream still to come
        rest = stream.read().decode()
        events = [line for line in (first.decode() + rest).split("\r\n") if line.startswith("data: ")]
        assert len(events) == 20, "the open stream completed after SIGTERM"
        assert "error" not in rest
        assert process.wait(timeout=30) == 0
        log = log_path.read_text()
        assert "stopped" in log
        assert "\x1b[" not in log, "no colour codes in a log written to a file"
        # Every task had an owner that waited for it: none was left running.
        assert "tasks still running at shutdown" not in log, log
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{mock.base}/_mock/stream-chunks/3", method="POST")).close()
        urllib.request.urlopen(urllib.request.Request(f"{mock.base}/_mock/stream-delay/5", method="POST")).close()
        if process.poll() is None:
            process.kill()
    # Started again on the same data: every outcome, the stream's included, was recorded.
    process, url, _ = start_gateway(mock, tmp_path, [key])
    try:
        keys = admin_keys(url)
        assert len(keys) == 1
        assert keys[0]["success_count"] == 4
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_metrics_reflect_requests(mock, tmp_path):
    keys = [new_key(), new_key()]
    process, url, metrics_url = start_gateway(mock, tmp_path, keys)
    try:
        mock.set_behavior(keys[0], {"behavior": "quota", "retry_delay_seconds": 60})
        for _ in range(2):
            post_json(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}, {"x-goog-api-key": CLIENT_TOKEN}).close()
        def scrape():
            with urllib.request.urlopen(metrics_url) as answer:
                assert answer.headers["content-type"].startswith("text/plain")
                return answer.read().decode()

        # Outcomes reach the keys service in batches (within ~50 ms): wait for the pool gauge.
        deadline = time.time() + 5
        text = scrape()
        while 'gemini_key_pool_keys{state="cooling_down"} 1' not in text and time.time() < deadline:
            time.sleep(0.05)
            text = scrape()
        lines = text.splitlines()

        def value(prefix):
            matching = [line for line in lines if line.startswith(prefix)]
            assert matching, f"no {prefix} in:\n{text}"
            return sum(float(line.rsplit(" ", 1)[1]) for line in matching)

        assert value('http_server_requests_total{method="POST",route="/v1beta/models/{model_action}",status="200"}') == 2
        assert value("http_server_request_duration_seconds_bucket{") > 0
        assert value('gemini_upstream_attempts_total{outcome="success"}') == 2
        assert value('gemini_upstream_attempts_total{outcome="quota"}') == 1
        assert value('rpc_server_requests_total{service="gemini_balance.chat.v1.ChatService",method="GenerateContent",code="Ok"}') == 2
        assert value("rpc_server_duration_seconds_bucket{") > 0
        assert value('gemini_key_pool_keys{state="cooling_down"}') == 1
        assert value('gemini_key_pool_keys{state="active"}') == 1
        assert "gemini_outcome_reports_dropped_total" not in text or value("gemini_outcome_reports_dropped_total") == 0
        assert keys[0] not in text and keys[1] not in text
    finally:
        mock.set_behavior(keys[0], {"behavior": "ok"})
        process.terminate()
        assert process.wait(timeout=30) == 0


def put_setting(url, name, value):
    request = urllib.request.Request(
        f"{url}/configs/{name}",
        data=json.dumps({"value": value}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}"},
        method="PUT",
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200


def test_log_level_changes_while_running(mock, tmp_path):
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log_file:
        process, url, _ = start_gateway(mock, tmp_path, [new_key()], log_file=log_file, LOG_LEVEL="warn", LOG_FORMAT="json")
    try:
        def generate():
            post_json(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}, {"x-goog-api-key": CLIENT_TOKEN}).close()

        def levels():
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            return {line.get("level") for line in lines}

        generate()
        assert levels() <= {"WARN", "ERROR"}, "nothing below warn at LOG_LEVEL=warn"
        put_setting(url, "LOG_LEVEL", "debug")
        deadline = time.time() + 5
        while "DEBUG" not in levels() and time.time() < deadline:
            generate()
            time.sleep(0.05)
        assert "DEBUG" in levels(), "LOG_LEVEL=debug applied without a restart"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
