//! The web console over HTTP in every setup (both run modes, both backends): the login, every
//! page rendered from the services, the session on the admin API with and without its CSRF
//! token, and the call series the charts draw adding up to the calls made. The browser tests
//! (`tests/sdk/test_console*.py`) drive the same pages in Chromium, all-in-one on SQLite.

use serde_json::Value;

use crate::each_setup;
use crate::harness::{ADMIN_TOKEN, Backend, CLIENT_TOKEN, Mode, TestApp};

const FORM: &str = "application/x-www-form-urlencoded";

/// A logged-in console: its cookie and CSRF token, and a client that follows no redirect.
struct Console {
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

fn cookie_named(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn csrf_in(html: &str) -> String {
    let marker = ["name=\"csrf\" value=\"", "name=\"csrf-token\" content=\""]
        .into_iter()
        .find(|marker| html.contains(marker))
        .expect("a CSRF token in the page");
    let rest = &html[html.find(marker).unwrap() + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn log_in(app: &TestApp) -> Console {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let nonce = cookie_named(&form, "gb_login").expect("the login form's nonce");
    let csrf = csrf_in(&form.text().await.unwrap());
    let logged_in = client
        .post(app.url("/login"))
        .header("cookie", &nonce)
        .header("content-type", FORM)
        // Both are URL-safe as they are (the test's token, hex).
        .body(format!("token={ADMIN_TOKEN}&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 303);
    assert_eq!(logged_in.headers()["location"], "/console/keys");
    let cookie = cookie_named(&logged_in, "gb_session").expect("a session");
    let page = client
        .get(app.url("/console/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_in(&page.text().await.unwrap());
    Console {
        client,
        cookie,
        csrf,
    }
}

impl Console {
    async fn get(&self, app: &TestApp, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

async fn console_pages(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for _ in 0..3 {
        assert_eq!(app.generate("hello").await.0, 200);
    }
    let console = log_in(&app).await;

    // The charts' series: every width adds up to the three calls (the counters are written in
    // batches: wait for them).
    for (width, period) in [("minute", "1h"), ("hour", "24h"), ("day", "30d")] {
        let path = format!("/api/stats/series?width={width}&period={period}");
        app.eventually(&format!("the {width} series"), || async {
            let (status, body) = console.get(&app, &path).await;
            let series: Value = serde_json::from_str(&body).unwrap_or_default();
            let points = series["points"].as_array().cloned().unwrap_or_default();
            let calls: u64 = points
                .iter()
                .map(|point| point["calls"].as_u64().unwrap_or(0))
                .sum();
            status == 200 && calls == 3 && series["calls"] == 3
        })
        .await;
    }
    let (status, body) = console.get(&app, "/api/stats/series?width=week").await;
    assert_eq!(status, 400, "{body}");

    for (path, marker) in [
        ("/console/keys", "id=\"keys-table\""),
        ("/console/config", "data-name=\"MAX_RETRIES\""),
        ("/console/logs", "id=\"errors-table\""),
        ("/console/logs?kind=requests", "id=\"calls-table\""),
        ("/console/stats", "id=\"latency-table\""),
        ("/console/files", "id=\"files-table\""),
    ] {
        let (status, html) = console.get(&app, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.contains(marker), "{path} lacks {marker}");
        for secret in app
            .keys
            .iter()
            .map(String::as_str)
            .chain([ADMIN_TOKEN, CLIENT_TOKEN])
        {
            assert!(!html.contains(secret), "{path} holds a secret");
        }
    }
    let (_, keys_page) = console.get(&app, "/console/keys").await;
    for key in &app.keys {
        let masked = gb_runtime::secrets::mask_key(key);
        assert!(keys_page.contains(&masked), "{masked} listed");
    }

    // The session on the admin API: reads freely, changes with the CSRF token only.
    let reset = |csrf: Option<&str>| {
        let mut request = console
            .client
            .post(app.url("/gemini/v1beta/reset-all-fail-counts"))
            .header("cookie", &console.cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_eq!(reset(None).await.unwrap().status(), 403);
    assert_eq!(reset(Some("forged")).await.unwrap().status(), 403);
    assert_eq!(reset(Some(&console.csrf)).await.unwrap().status(), 200);

    // Logout clears the cookie and needs the token too.
    let logout = |csrf: &str| {
        console
            .client
            .post(app.url("/console/logout"))
            .header("cookie", &console.cookie)
            .header("content-type", FORM)
            .body(format!("csrf={csrf}"))
            .send()
    };
    assert_eq!(logout("").await.unwrap().status(), 403);
    let out = logout(&console.csrf).await.unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        cookie_named(&out, "gb_session").is_some_and(|cookie| cookie == "gb_session="),
        "the session cookie is cleared"
    );
}

each_setup!(console_pages, console_pages);
