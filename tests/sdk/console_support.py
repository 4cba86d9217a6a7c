"""What the console's browser tests share: the console's own gateway and Chromium (fixtures,
in conftest.py), plain HTTP calls, a login, waiting for an event."""

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import ADMIN_TOKEN, CLIENT_TOKEN, ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("GB_ARTIFACTS", ROOT / "target" / "console"))


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
