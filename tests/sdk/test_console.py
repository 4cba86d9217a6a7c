"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright (its
Python package, with the executable path set to the system Chromium; no browser download),
against the real binary (all-in-one, SQLite) and the mock Gemini API. A screenshot of every
page is kept under GB_ARTIFACTS (default target/console)."""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ADMIN_TOKEN, CLIENT_TOKEN, ROOT, new_key, start_gateway

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GB_ARTIFACTS", ROOT / "target" / "console"))
PAYLOAD = '<script>window.__xss=1</script>"onmouseover="window.__xss=2'
# A file's name is cut at its last `/` and holds no `"`, as browsers send it.
FILE_PAYLOAD = "<img src=x onerror=window.__xss=3><b onmouseover=window.__xss=4>.txt"


def http(method, url, body=None, headers=None):
    """(status, headers, body text) of one HTTP call."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        headers.setdefault("content-type", "application/json")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_no_redirect(url, headers):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers)) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def eventually(check, timeout=20.0, what="the condition"):
    """Waits for `check()` to be true (polling), failing with `what` after `timeout`."""
    deadline = time.time() + timeout
    while True:
        if check():
            return
        if time.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def generate(url, key=CLIENT_TOKEN, model="gemini-2.5-flash"):
    return http(
        "POST",
        f"{url}/v1beta/models/{model}:generateContent",
        {"contents": [{"parts": [{"text": "hello"}]}]},
        {"x-goog-api-key": key},
    )


@pytest.fixture(scope="module")
def console(mock, tmp_path_factory):
    """A gateway of its own (three keys), its URL and keys."""
    workdir = tmp_path_factory.mktemp("console")
    keys = [new_key(), new_key(), new_key()]
    process, url, _ = start_gateway(mock, workdir, keys)
    try:
        yield {"url": url, "keys": keys, "process": process}
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():
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


def log_in(browser, url, locale="en-US"):
    """A new browser context logged in to the console; returns (context, page)."""
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(f"{url}/")
    page.fill("#token", ADMIN_TOKEN)
    page.click("#login")
    page.wait_for_url("**/console/keys")
    return context, page


def csrf_of(page):
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def test_login_session_cookie_headers_and_logout(console, browser):
    url = console["url"]
    context = browser.new_context()
    page = context.new_page()
    answer = page.goto(f"{url}/console/keys")
    assert page.url == f"{url}/", "a page without a session sends to the login form"
    headers = answer.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"

    page.fill("#token", "not-the-token")
    page.click("#login")
    expect(page.locator("#login-error")).to_contain_text("not the admin token")
    assert not [c for c in context.cookies() if c["name"] == "gb_session"]

    page.fill("#token", ADMIN_TOKEN)
    page.click("#login")
    page.wait_for_url("**/console/keys")
    (session,) = [c for c in context.cookies() if c["name"] == "gb_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert not session["secure"], "plain http: no Secure flag"
    assert ADMIN_TOKEN not in session["value"]
    assert ADMIN_TOKEN not in page.content() and ADMIN_TOKEN not in page.url
    page.screenshot(path=ARTIFACTS / "keys.png", full_page=True)

    page.click("#logout")
    page.wait_for_url(f"{url}/")
    assert not [c for c in context.cookies() if c["name"] == "gb_session"]
    page.goto(f"{url}/console/config")
    assert page.url == f"{url}/"
    page.screenshot(path=ARTIFACTS / "login.png")
    context.close()


def test_secure_cookie_behind_https_proxy_and_login_rate_limit(console):
    url = console["url"]
    # A client address of its own (behind a proxy on loopback), so that the other tests'
    # logins from 127.0.0.1 are not held.
    address = f"203.0.113.{uuid.uuid4().int % 200 + 1}"

    def login_attempt(token, forwarded_proto="http"):
        status, headers, body = http("GET", f"{url}/", headers={"x-forwarded-for": address})
        nonce = re.search(r"gb_login=([0-9a-f]+)", headers["set-cookie"]).group(1)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', body).group(1)
        form = urllib.parse.urlencode({"token": token, "csrf": csrf}).encode()
        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(
            f"{url}/login",
            data=form,
            headers={
                "cookie": f"gb_login={nonce}",
                "x-forwarded-for": address,
                "x-forwarded-proto": forwarded_proto,
                "content-type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with opener.open(request) as answer:
                return answer.status, answer.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers

    status, headers = login_attempt(ADMIN_TOKEN, forwarded_proto="https")
    assert status == 303
    assert "Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    for _ in range(5):
        assert login_attempt("wrong")[0] == 401
    status, headers = login_attempt(ADMIN_TOKEN)
    assert status == 429, "after 5 failures even the right token waits"
    assert int(headers["retry-after"]) > 0
    assert login_attempt(ADMIN_TOKEN)[0] == 429
    # A login form posted without its nonce cookie is refused (login CSRF).
    status, _, _ = http(
        "POST",
        f"{url}/login",
        b"token=" + ADMIN_TOKEN.encode(),
        {"content-type": "application/x-www-form-urlencoded", "x-forwarded-for": "203.0.113.250"},
    )
    assert status == 403


def test_csrf_refused_without_the_token(console, browser):
    url = console["url"]
    context, page = log_in(browser, url)
    token = csrf_of(page)
    requests = context.request
    for path in ["/gemini/v1beta/reset-all-fail-counts", "/api/config/reset"]:
        assert requests.post(f"{url}{path}").status == 403
        assert requests.post(f"{url}{path}", headers={"x-csrf-token": "0" * 64}).status == 403
    assert requests.delete(f"{url}/api/logs/errors/all").status == 403
    assert requests.post(f"{url}/console/keys/add", form={"text": new_key()}).status == 403
    assert requests.post(f"{url}/console/logout", form={}).status == 403
    assert requests.post(f"{url}/files", multipart={"file": {"name": "a.txt", "mimeType": "text/plain", "buffer": b"x"}}).status == 403
    # Reads need the session only; the same change with the token passes.
    assert requests.get(f"{url}/api/stats/calls").status == 200
    answer = requests.post(f"{url}/gemini/v1beta/reset-all-fail-counts", headers={"x-csrf-token": token})
    assert answer.status == 200
    # The Authorization-header API is as it was, and a request with neither is refused.
    assert http("POST", f"{url}/gemini/v1beta/reset-all-fail-counts", b"", {"authorization": f"Bearer {ADMIN_TOKEN}"})[0] == 200
    assert http("GET", f"{url}/api/stats/calls")[0] == 401
    context.close()


def test_bookmarks_redirect_and_keys_stays_json_for_api_callers(console):
    url = console["url"]
    browser_headers = {"accept": "text/html,application/xhtml+xml"}
    for old, new in [("/keys", "/console/keys"), ("/config", "/console/config"), ("/logs", "/console/logs")]:
        status, headers, _ = http_no_redirect(f"{url}{old}", browser_headers)
        assert status in (302, 303, 307, 308) and headers["location"] == new, old
    status, headers, body = http("GET", f"{url}/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}", "accept": "text/html"})
    assert status == 200 and "keys" in json.loads(body)
    assert http("GET", f"{url}/keys", headers={"accept": "application/json"})[0] == 401


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

    page.goto(f"{url}/console/config#tab-api")
    page.locator('.setting[data-name="MAX_FAILURES"] input').fill("0")
    page.click("#save-config")
    error = page.locator('[data-error-for="MAX_FAILURES"]')
    expect(error).to_contain_text("must be at least 1")
    assert json.loads(http("GET", f"{url}/api/config", headers={"authorization": ADMIN_TOKEN})[2])["MAX_FAILURES"] == 3

    # The source is shown, and a per-setting reset brings the environment's value back.
    page.goto(f"{url}/console/config#tab-model")
    row = page.locator('.setting[data-name="FILTERED_MODELS"]')
    expect(row.locator(".badge.api")).to_be_visible()
    row.locator("button[data-reset]").click()
    eventually(lambda: "models/gemini-2.5-pro" in listed(), what="the reset to apply")
    # A secret stays masked and kept when the form is saved with it unchanged.
    page.goto(f"{url}/console/config#tab-api")
    tokens = page.locator('.setting[data-name="ALLOWED_TOKENS"] .item input')
    assert CLIENT_TOKEN not in tokens.first.input_value()
    page.locator('.setting[data-name="ALLOWED_TOKENS"] button.generate').click()
    generated = tokens.last.input_value()
    assert re.fullmatch(r"sk-[0-9a-f]{48}", generated)
    page.click("#save-config")
    expect(page.locator("#save-status")).to_have_text("Saved and applied.")
    eventually(lambda: generate(url)[0] == 200 and generate(url, key=generated)[0] == 200, what="both tokens to work")
    page.goto(f"{url}/console/config#tab-api")
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


def test_a_session_expires(mock, browser, tmp_path):
    process, url, _ = start_gateway(mock, tmp_path, [new_key()], ADMIN_SESSION_EXPIRE="5")
    try:
        context, page = log_in(browser, url)
        (session,) = [c for c in context.cookies() if c["name"] == "gb_session"]
        cookie = f"gb_session={session['value']}"
        assert http("GET", f"{url}/api/stats/calls", headers={"cookie": cookie})[0] == 200
        eventually(lambda: http("GET", f"{url}/api/stats/calls", headers={"cookie": cookie})[0] == 401,
                   timeout=20, what="the session's end")
        page.goto(f"{url}/console/keys")
        assert page.url == f"{url}/"
        context.close()
    finally:
        process.terminate()
        process.wait(timeout=15)


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
