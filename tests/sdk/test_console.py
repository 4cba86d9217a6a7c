"""The web console's login, session and CSRF in a real browser: Debian's Chromium, headless,
driven by Playwright (its Python package, with the executable path set to the system Chromium;
no browser download), against the real binary (all-in-one, SQLite) and the mock Gemini API."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

from playwright.sync_api import expect

from conftest import ADMIN_TOKEN, new_key, start_gateway
from console_support import ARTIFACTS, NoRedirect, http, http_no_redirect, eventually, log_in, csrf_of


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
