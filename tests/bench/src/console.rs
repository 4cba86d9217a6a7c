//! The web console's keys page with a large pool: the keys added through the console's own
//! bulk add (pasted text, 500 keys a form), then one page of the table, a search with a sort,
//! against the admin API's JSON list of every key (the same data read, the baseline) in the
//! same run.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use tokio::process::Command;

use crate::load::HttpClient;
use crate::run::{ADMIN_TOKEN, Processes, gateway_env, wait_for};

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConsoleFigures {
    pub keys: usize,
    pub add_keys_per_s: f64,
    /// Medians of `reads` reads, in ms.
    pub page_ms: f64,
    pub search_ms: f64,
    pub json_list_ms: f64,
    pub reads: usize,
}

struct Answer {
    status: u16,
    cookies: Vec<String>,
    body: String,
}

async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> anyhow::Result<Answer> {
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = client
        .request(request.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = answer.status().as_u16();
    let cookies = answer
        .headers()
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .map(str::to_owned)
        .collect();
    let body =
        String::from_utf8_lossy(&answer.into_body().collect().await?.to_bytes()).into_owned();
    Ok(Answer {
        status,
        cookies,
        body,
    })
}

/// The value of the first `name="csrf" value="…"` or `name="csrf-token" content="…"`.
fn csrf_in(html: &str) -> anyhow::Result<String> {
    for marker in ["name=\"csrf\" value=\"", "name=\"csrf-token\" content=\""] {
        if let Some(start) = html.find(marker) {
            let rest = &html[start + marker.len()..];
            return Ok(rest[..rest.find('"').unwrap_or(0)].to_owned());
        }
    }
    anyhow::bail!("no CSRF token in the page")
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn median_ms(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    reads: usize,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        let answer = call(client, "GET", url, headers, String::new()).await?;
        anyhow::ensure!(answer.status == 200, "{url} answered {}", answer.status);
        times.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub async fn run(
    gateway: &Path,
    data: &Path,
    keys: usize,
    reads: usize,
) -> anyhow::Result<ConsoleFigures> {
    let dir = data.join("console");
    std::fs::create_dir_all(&dir)?;
    let address = crate::run::free_address()?;
    let mut processes = Processes::default();
    let mut command = Command::new(gateway);
    // No upstream call is made: the address only has to parse.
    gateway_env(&mut command, address, &dir, 0);
    command
        .env("GATEWAY_ADDR", address.to_string())
        .env("METRICS_ADDR", crate::run::free_address()?.to_string());
    processes.spawn(&mut command)?;
    let base = format!("http://{address}");
    let client = crate::load::client();
    wait_for(&client, &format!("{base}/health")).await?;

    let login_page = call(&client, "GET", &format!("{base}/"), &[], String::new()).await?;
    let nonce = login_page
        .cookies
        .iter()
        .find(|cookie| cookie.starts_with("gb_login="))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the login page set no nonce"))?;
    let csrf = csrf_in(&login_page.body)?;
    let logged_in = call(
        &client,
        "POST",
        &format!("{base}/login"),
        &[
            ("cookie", &nonce),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form(&[("token", ADMIN_TOKEN), ("csrf", &csrf)]),
    )
    .await?;
    let session = logged_in
        .cookies
        .iter()
        .find(|cookie| cookie.starts_with("gb_session=") && cookie.len() > 12)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!("the login answered {} without a session", logged_in.status)
        })?;
    let page = call(
        &client,
        "GET",
        &format!("{base}/console/keys"),
        &[("cookie", &session)],
        String::new(),
    )
    .await?;
    let csrf = csrf_in(&page.body)?;

    // The keys, pasted 500 at a time.
    let all: Vec<String> = (0..keys)
        .map(|index| format!("AIzaSyConsole{index:026}"))
        .collect();
    let started = Instant::now();
    for chunk in all.chunks(500) {
        let text = chunk.join("\n");
        let answer = call(
            &client,
            "POST",
            &format!("{base}/console/keys/add"),
            &[
                ("cookie", &session),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form(&[("csrf", &csrf), ("text", &text)]),
        )
        .await?;
        anyhow::ensure!(
            answer.status == 200
                && answer
                    .body
                    .contains(&format!("id=\"added-count\">{}<", chunk.len())),
            "adding keys answered {}",
            answer.status
        );
    }
    let add_keys_per_s = keys as f64 / started.elapsed().as_secs_f64().max(1e-9);

    let cookie = [("cookie", session.as_str())];
    let page_ms = median_ms(
        &client,
        &format!("{base}/console/keys?page=10&per_page=50"),
        &cookie,
        reads,
    )
    .await?;
    let search_ms = median_ms(
        &client,
        &format!("{base}/console/keys?q=AIzaSyConsole&sort=calls&dir=desc&per_page=100"),
        &cookie,
        reads,
    )
    .await?;
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let json_list_ms = median_ms(
        &client,
        &format!("{base}/keys"),
        &[("authorization", &admin)],
        reads,
    )
    .await?;
    Ok(ConsoleFigures {
        keys,
        add_keys_per_s,
        page_ms,
        search_ms,
        json_list_ms,
        reads,
    })
}
