"""The web console's pages in a real browser (Chromium through Playwright), against the real
binary and the mock Gemini API: every action of each page, the charts, Chinese, reading without
JavaScript, user text rendered as text, no secret in any page or asset. A screenshot of every
page is kept under GB_ARTIFACTS (default target/console)."""

import json
import os
import re
from pathlib import Path

from playwright.sync_api import expect

from conftest import ADMIN_TOKEN, CLIENT_TOKEN, new_key
from console_support import ARTIFACTS, eventually, generate, http, log_in

PAYLOAD = '<script>window.__xss=1</script>"onmouseover="window.__xss=2'
# A file's name is cut at its last `/` and holds no `"`, as browsers send it.
FILE_PAYLOAD = "<img src=x onerror=window.__xss=3><b onmouseover=window.__xss=4>.txt"


def test_bulk_add_filter_and_paginate(console, browser):
    url = console["url"]
    context, page = log_in(browser, url)
    added = [new_key() for _ in range(20)]
    text = "keys from the sheet:\n" + "\n".join(f"{key}, {key}" for key in added) + f"\nold: {console['keys'][0]} junk AIzaSyShort"
    page.click("#add-form >> xpath=ancestor::details/summary")
    page.fill("#add-text", text)
    page.click("#add-submit")
    expect(page.locator("#added-count")).to_have_text("20")
    expect(page.locator("#duplicate-count")).to_have_text("20")
    expect(page.locator("#existing-count")).to_have_text("1")
    expect(page.locator("#keys-total")).to_have_text("23")
    for key in added:
        assert key not in page.content(), "the page never holds a full key"

    page.goto(f"{url}/console/keys?per_page=20")
    expect(page.locator("#keys-table tbody tr")).to_have_count(20)
    page.click("#next-page")
    expect(page.locator("#page-number")).to_have_text("2")
    expect(page.locator("#keys-table tbody tr")).to_have_count(3)

    page.fill('#key-filters input[name="q"]', added[7])
    page.click('#key-filters button[type="submit"]')
    expect(page.locator("#keys-table tbody tr")).to_have_count(1)
    masked = page.locator("#keys-table tbody tr").first.get_attribute("data-masked")
    assert masked.startswith("AIzaSy") and masked.endswith(added[7][-4:])
    page.select_option('#key-filters select[name="status"]', "disabled")
    page.fill('#key-filters input[name="q"]', "")
    page.click('#key-filters button[type="submit"]')
    expect(page.locator("#no-keys")).to_be_visible()
    assert not page.errors
    context.close()


def test_verify_and_reset_a_failing_key(console, mock, browser):
    url = console["url"]
    key = console["keys"][1]
    context, page = log_in(browser, url)
    row = page.locator("#keys-table tbody tr", has=page.locator(f"code:text('{key[-4:]}')"))
    expect(row.locator(".badge")).to_have_text("Active")
    mock.set_behavior(key, {"behavior": "invalid_key"})
    try:
        row.locator('button[data-action="verify"]').click()
        expect(page.locator("#toast")).to_contain_text("1 invalid")
        row = page.locator("#keys-table tbody tr", has=page.locator(f"code:text('{key[-4:]}')"))
        expect(row.locator(".badge")).to_have_text("Disabled", timeout=10_000)
        expect(row.locator("td.error-text")).not_to_be_empty()
    finally:
        mock.set_behavior(key, {"behavior": "ok"})
    row.locator('button[data-action="reset"]').click()
    row = page.locator("#keys-table tbody tr", has=page.locator(f"code:text('{key[-4:]}')"))
    expect(row.locator(".badge")).to_have_text("Active", timeout=10_000)
    expect(row.locator("td").nth(4)).to_have_text("0")
    # Batch verify with its progress: every key of the page, all valid again.
    page.goto(f"{url}/console/keys?status=active")
    page.check("#select-all")
    page.click('#batch button[data-batch="verify"]')
    expect(page.locator("#toast")).to_contain_text("0 invalid", timeout=20_000)
    assert not page.errors
    context.close()


def test_a_setting_changes_the_next_request_and_a_bad_value_is_refused(console, browser):
    # (Each visit below is a new document: a saved page reloads itself a moment after saving,
    # and a visit that only changed the #tab would be reloaded under the test's feet.)
    url = console["url"]
    listed = lambda: [m["name"] for m in json.loads(http("GET", f"{url}/v1beta/models", headers={"x-goog-api-key": CLIENT_TOKEN})[2])["models"]]
    assert "models/gemini-2.5-pro" in listed()
    context, page = log_in(browser, url)
    page.goto(f"{url}/console/config")
    page.click('#config-tabs a[data-tab="model"]')
    row = page.locator('.setting[data-name="FILTERED_MODELS"]')
    row.get_by_role("button", name="Add").click()
    row.locator(".item input").last.fill("gemini-2.5-pro")
    page.click("#save-config")
    expect(page.locator("#save-status")).to_have_text("Saved and applied.")
    eventually(lambda: "models/gemini-2.5-pro" not in listed(), what="the filter to apply")
    page.screenshot(path=ARTIFACTS / "config.png", full_page=False)

    page.goto(f"{url}/console/config?step=1#tab-api")
    page.locator('.setting[data-name="MAX_FAILURES"] input').fill("0")
    page.click("#save-config")
    error = page.locator('[data-error-for="MAX_FAILURES"]')
    expect(error).to_contain_text("must be at least 1")
    assert json.loads(http("GET", f"{url}/api/config", headers={"authorization": ADMIN_TOKEN})[2])["MAX_FAILURES"] == 3

    # The source is shown, and a per-setting reset brings the environment's value back.
    page.goto(f"{url}/console/config?step=2#tab-model")
    row = page.locator('.setting[data-name="FILTERED_MODELS"]')
    expect(row.locator(".badge.api")).to_be_visible()
    row.locator("button[data-reset]").click()
    eventually(lambda: "models/gemini-2.5-pro" in listed(), what="the reset to apply")
    # A secret stays masked and kept when the form is saved with it unchanged.
    page.goto(f"{url}/console/config?step=3#tab-api")
    tokens = page.locator('.setting[data-name="ALLOWED_TOKENS"] .item input')
    assert CLIENT_TOKEN not in tokens.first.input_value()
    page.locator('.setting[data-name="ALLOWED_TOKENS"] button.generate').click()
    generated = tokens.last.input_value()
    assert re.fullmatch(r"sk-[0-9a-f]{48}", generated)
    page.click("#save-config")
    expect(page.locator("#save-status")).to_have_text("Saved and applied.")
    eventually(lambda: generate(url)[0] == 200 and generate(url, key=generated)[0] == 200, what="both tokens to work")
    page.goto(f"{url}/console/config?step=4#tab-api")
    page.locator('.setting[data-name="ALLOWED_TOKENS"] button[data-reset]').click()
    eventually(lambda: generate(url, key=generated)[0] == 401, what="the generated token to go")
    assert not page.errors
    context.close()


def test_error_log_read_and_delete_with_payloads_escaped(console, mock, browser, tmp_path):
    url = console["url"]
    key = console["keys"][2]
    mock.set_behavior(key, {"behavior": "suspended_with_message", "message": PAYLOAD})
    try:
        eventually(lambda: generate(url)[0] == 200 and any(
            log["error_code"] == 403 for log in json.loads(http("GET", f"{url}/api/logs/errors?limit=100", headers={"authorization": ADMIN_TOKEN})[2])["logs"]
        ), what="the suspended key's error log")
    finally:
        mock.set_behavior(key, {"behavior": "ok"})
    # The payload also in a setting's value and in a file's name.
    assert http("PUT", f"{url}/api/config", {"TTS_VOICE_NAME": PAYLOAD}, {"authorization": ADMIN_TOKEN})[0] == 200
    boundary = "gbconsole"
    body = (f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="{FILE_PAYLOAD}"\r\n'
            f"content-type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    assert http("POST", f"{url}/files", body, {"x-goog-api-key": CLIENT_TOKEN, "content-type": f"multipart/form-data; boundary={boundary}"})[0] in (200, 201)

    context, page = log_in(browser, url)

    def rendered_as_text(where, escaped="&lt;script&gt;window.__xss=1&lt;/script&gt;"):
        html = page.content()
        assert escaped in html, where
        assert page.locator("script", has_text="__xss").count() == 0, where
        assert page.locator("[onmouseover]").count() == 0, where
        for element in page.locator("code, td, pre, .value").all()[:400]:
            if "__xss" in (element.text_content() or "") and element.is_visible():
                element.hover()
        assert page.evaluate("window.__xss") is None, where

    page.goto(f"{url}/console/keys")
    expect(page.locator("td.error-text", has_text="window.__xss=1")).to_have_count(1)
    rendered_as_text("a key's last error")

    page.goto(f"{url}/console/logs?code=403")
    detail = page.locator("#errors-table tbody tr").first
    log_id = detail.get_attribute("data-log-id")
    detail.locator("a.detail-link").click()
    expect(page.locator("#detail-error")).to_contain_text("window.__xss=1")
    rendered_as_text("an error log's body")
    page.screenshot(path=ARTIFACTS / "logs.png", full_page=False)
    page.click("#delete-detail")
    expect(page.locator(f'#errors-table tr[data-log-id="{log_id}"]')).to_have_count(0)
    expect(page.locator("#log-detail")).to_have_count(0)

    page.goto(f"{url}/console/config#tab-tts")
    expect(page.locator('.setting[data-name="TTS_VOICE_NAME"] input')).to_have_value(PAYLOAD)
    rendered_as_text("a setting's value")
    page.goto(f"{url}/console/files")
    expect(page.locator("td.file-name", has_text="__xss")).to_have_count(1)
    rendered_as_text("a file's name", "&lt;img src=x onerror=window.__xss=3&gt;")
    assert page.locator("img").count() == 0
    assert http("DELETE", f"{url}/configs/TTS_VOICE_NAME", headers={"authorization": ADMIN_TOKEN})[0] == 200
    assert not page.errors
    context.close()


def test_files_upload_with_progress_download_and_delete(console, browser, tmp_path):
    url = console["url"]
    context, page = log_in(browser, url)
    page.goto(f"{url}/console/files")
    content = os.urandom(3 * 1024 * 1024)
    page.set_input_files("#upload-file", files=[{"name": "report.bin", "mimeType": "application/octet-stream", "buffer": content}])
    page.click("#upload-submit")
    row = page.locator("#files-table tbody tr", has=page.locator("td.file-name", has_text="report.bin"))
    expect(row).to_have_count(1, timeout=20_000)
    expect(row.locator("td").nth(3)).to_have_text("3.0 MB")
    page.screenshot(path=ARTIFACTS / "files.png", full_page=False)
    with page.expect_download() as download:
        row.locator("a[download]").click()
    assert Path(download.value.path()).read_bytes() == content
    row.locator("button[data-delete]").click()
    expect(row).to_have_count(0)
    page.reload()
    expect(page.locator("td.file-name", has_text="report.bin")).to_have_count(0)
    assert not page.errors
    context.close()


def test_charts_render_with_data(console, browser):
    url = console["url"]
    for _ in range(3):
        assert generate(url)[0] == 200
    context, page = log_in(browser, url)
    # The table's tokens of 24 h are each key's, as its usage of 24 h by model adds them up
    # (the calls just made reach the counters in a batch: the page and the usage read then may
    # be a batch apart, so read both again until they agree).
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    def tokens_agree():
        page.reload()
        counted = 0
        for row in page.locator("#keys-table tbody tr").all():
            usage = json.loads(http("GET", f"{url}/api/key-usage-details/{row.get_attribute('data-key-id')}", headers=admin)[2])
            tokens = sum(model["prompt_tokens"] + model["completion_tokens"] for model in usage["models"])
            if row.locator("td").nth(9).text_content() != str(tokens):
                return False
            counted += tokens
        return counted > 0

    eventually(tokens_agree, what="the table's tokens to be each key's")
    trend = page.locator("#trend-chart")
    expect(trend).to_have_attribute("data-rendered", "true")
    assert int(trend.get_attribute("data-points")) > 0
    page.goto(f"{url}/console/stats")
    for chart in ["#series-chart", "#tokens-key-chart", "#tokens-client-chart"]:
        expect(page.locator(chart)).to_have_attribute("data-rendered", "true")
        assert int(page.locator(chart).get_attribute("data-points")) > 0, chart
    rows = page.locator("#latency-table tbody tr")
    expect(rows).to_have_count(3)
    assert re.fullmatch(r"\d+ ms", rows.first.locator("td").nth(2).text_content())
    page.click('#series-widths button[data-width="hour"]')
    expect(page.locator('#series-widths button[data-width="hour"]')).to_have_class(re.compile("on"))
    page.screenshot(path=ARTIFACTS / "stats.png", full_page=True)
    assert not page.errors
    context.close()


def test_the_chinese_pages_and_the_switch(console, browser):
    url = console["url"]
    context, page = log_in(browser, url, locale="zh-CN")
    expect(page.locator("header nav a").first).to_have_text("密钥")
    expect(page.locator("#count-active")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.screenshot(path=ARTIFACTS / "keys-zh-CN.png", full_page=False)
    page.goto(f"{url}/console/config")
    expect(page.locator('.setting[data-name="MAX_RETRIES"] .about')).to_have_text("每个请求的最多尝试次数（每次换一个密钥）。")
    expect(page.locator("#save-config")).to_have_text("保存")
    page.goto(f"{url}/console/keys")
    page.click("#lang-switch")
    expect(page.locator("header nav a").first).to_have_text("Keys")
    page.goto(f"{url}/console/logs")
    expect(page.locator("header nav a").first).to_have_text("Keys"), "the choice is kept"
    context.close()


def test_no_page_or_asset_holds_a_key_or_token(console, browser):
    url = console["url"]
    context, page = log_in(browser, url)
    secrets = console["keys"] + [ADMIN_TOKEN, CLIENT_TOKEN]
    assets = set()
    page.on("request", lambda request: assets.add(request.url) if "/console/assets/" in request.url else None)
    for name in ["keys", "config", "logs", "logs?kind=requests", "stats", "files"]:
        answer = page.goto(f"{url}/console/{name}")
        assert answer.status == 200, name
        page.wait_for_load_state("networkidle")
        html = page.content()
        for secret in secrets:
            assert secret not in html, (name, secret[:6])
    page.goto(f"{url}/console/logs?kind=requests")
    page.screenshot(path=ARTIFACTS / "requests.png", full_page=False)
    assert len(assets) >= 6, assets
    for asset in assets:
        status, headers, body = http("GET", asset)
        assert status == 200 and "max-age" in headers["cache-control"], asset
        assert not any(secret in body for secret in secrets), asset
        assert "http://" not in body.replace("http://www.w3.org", "") or "chart.umd" in asset, asset
    context.close()


def test_reading_works_without_javascript(console, browser):
    url = console["url"]
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    stored = len(json.loads(http("GET", f"{url}/keys", headers=admin)[2])["keys"])
    for _ in range(max(0, 21 - stored)):
        assert http("POST", f"{url}/keys", {"key_value": new_key()}, admin)[0] == 201
    assert generate(url)[0] == 200
    context, page = log_in(browser, url)
    cookies = context.cookies()
    context.close()
    quiet = browser.new_context(java_script_enabled=False)
    quiet.add_cookies(cookies)
    page = quiet.new_page()
    page.goto(f"{url}/console/keys?per_page=20")
    expect(page.locator("#keys-table tbody tr")).to_have_count(20)
    page.click("#next-page")
    expect(page.locator("#page-number")).to_have_text("2")
    page.goto(f"{url}/console/config")
    expect(page.locator('.setting[data-name="MAX_RETRIES"] code.value')).to_have_text("3")
    expect(page.locator('.tab-panel[data-tab="logging"]')).to_be_visible()
    page.goto(f"{url}/console/logs?kind=requests")
    assert page.locator("#calls-table tbody tr").count() > 0
    page.goto(f"{url}/console/stats")
    expect(page.locator("#latency-table tbody tr")).to_have_count(3)
    quiet.close()


def test_the_editors_of_objects_and_json_the_model_picker_proxy_checks_and_reset_all(console, mock, browser):
    url = console["url"]
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    stored = lambda name: json.loads(http("GET", f"{url}/api/config", headers=admin)[2])[name]
    context, page = log_in(browser, url)
    page.goto(f"{url}/console/config#tab-model")
    # The picker offers the models the upstream lists.
    options = page.locator("#model-names option")
    assert "gemini-2.5-pro" in [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert page.locator('.setting[data-name="THINKING_MODELS"] .item').count() >= 1
    # A flat object: key/value rows.
    budget = page.locator('.setting[data-name="THINKING_BUDGET_MAP"]')
    budget.get_by_role("button", name="Add entry").click()
    budget.locator(".entry-name").last.fill("gemini-2.5-flash")
    budget.locator(".entry-value").last.fill("512")
    # A list of objects: JSON, checked before it is sent.
    safety = page.locator('.setting[data-name="SAFETY_SETTINGS"] textarea')
    safety.fill('[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"')
    page.click("#save-config")
    expect(page.locator('[data-error-for="SAFETY_SETTINGS"]')).to_contain_text("Not valid JSON")
    assert stored("THINKING_BUDGET_MAP") == {}, "nothing is saved while one field is bad"
    safety.fill('[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]')
    page.click("#save-config")
    expect(page.locator("#save-status")).to_have_text("Saved and applied.")
    assert stored("THINKING_BUDGET_MAP") == {"gemini-2.5-flash": 512}
    assert stored("SAFETY_SETTINGS") == [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    # gemini-balance's proxy check: the mock upstream serves as a live proxy; a closed port is not one.
    proxies = [mock.base, "http://user:s3cret@127.0.0.1:9"]
    assert http("PUT", f"{url}/api/config", {"PROXIES": proxies}, admin)[0] == 200
    # The chat service, which makes the checks, follows the settings through their stream.
    eventually(lambda: json.loads(http("POST", f"{url}/proxy/check-all", b"", admin)[2])["total"] == 2,
               what="PROXIES to reach the chat service")
    # A new document (the saved page reloads itself a moment after saving).
    page.goto(f"{url}/console/config?check#tab-api")
    page.locator('.setting[data-name="PROXIES"] button.check-proxies').click()
    checks = page.locator('.setting[data-name="PROXIES"] ul.proxy-checks li')
    expect(checks).to_have_count(2)
    expect(checks.nth(0)).to_contain_text("reaches the upstream")
    expect(checks.nth(1)).to_contain_text("unreachable")
    assert "s3cret" not in page.content()
    page.goto(f"{url}/console/config")
    page.click("#reset-all")
    eventually(lambda: stored("THINKING_BUDGET_MAP") == {} and stored("SAFETY_SETTINGS") == [] and stored("PROXIES") == [], what="the reset of every setting")
    assert not page.errors
    context.close()
