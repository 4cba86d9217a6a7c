//! `/console/logs`: error logs (filters by key, text, status code and dates, sort, pages,
//! jump-to-page, one log's detail with its request body) through the same query as
//! `/api/logs/errors`, and request logs (the calls of a period, by key, status code and
//! dates). The detail and the lists are server-rendered; deleting is `logs.js`'s.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use gb_proto::logging::v1 as pb;
use serde::Deserialize;

use super::{Chrome, query_string, render, when};
use crate::logs_routes::{ListQuery, error_logs, find_key, parse_time};
use crate::state::GatewayState;

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct Filter {
    pub kind: String,
    pub key: String,
    pub text: String,
    pub code: String,
    pub from: String,
    pub to: String,
    pub sort: String,
    pub dir: String,
    pub period: String,
    pub page: String,
    pub per_page: String,
    pub detail: String,
}

impl Filter {
    fn link(&self, page: usize, sort: &str, dir: &str, detail: &str) -> String {
        let pairs = [
            ("kind", self.kind.clone()),
            ("key", self.key.clone()),
            ("text", self.text.clone()),
            ("code", self.code.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("period", self.period.clone()),
            ("sort", sort.to_owned()),
            ("dir", dir.to_owned()),
            ("per_page", self.per_page.clone()),
            ("page", page.to_string()),
            ("detail", detail.to_owned()),
        ];
        format!("/console/logs?{}", query_string(&pairs))
    }

    pub fn at_page(&self, page: impl std::borrow::Borrow<usize>) -> String {
        self.link(*page.borrow(), &self.sort, &self.dir, "")
    }

    pub fn sorted(&self, column: &str) -> String {
        let dir = if self.sort == column && self.dir != "asc" {
            "asc"
        } else {
            "desc"
        };
        self.link(1, column, dir, "")
    }

    pub fn with_detail(&self, id: &i64) -> String {
        let page = self.page.parse().unwrap_or(1);
        self.link(page, &self.sort, &self.dir, &id.to_string())
    }

    fn per_page(&self) -> usize {
        self.per_page
            .parse()
            .ok()
            .filter(|size| matches!(size, 20 | 50 | 100 | 500))
            .unwrap_or(50)
    }
}

pub struct ErrorRow {
    pub id: i64,
    pub time: String,
    pub key: String,
    pub model: String,
    pub code: u32,
    pub kind: String,
    pub message: String,
}

pub struct Detail {
    pub id: i64,
    pub time: String,
    pub key: String,
    pub model: String,
    pub code: u32,
    pub kind: String,
    pub client: String,
    pub message: String,
    pub request_body: String,
}

pub struct CallRow {
    pub time: String,
    pub key: String,
    pub model: String,
    pub client: String,
    pub path: String,
    pub code: u32,
    pub latency_ms: u32,
    pub tokens: u64,
    pub attempts: u32,
    /// The error logs of the call's minute (gemini-balance's lookup from a call to its error).
    pub error_logs: String,
}

#[derive(Template)]
#[template(path = "console/logs.html")]
struct LogsPage {
    chrome: Chrome,
    filter: Filter,
    requests: bool,
    errors: Vec<ErrorRow>,
    calls: Vec<CallRow>,
    detail: Option<Detail>,
    problem: String,
    page: usize,
    pages: usize,
    total: u64,
}

pub async fn page(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<Filter>,
) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "logs") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    let per_page = filter.per_page();
    let asked_page: usize = filter.page.parse().unwrap_or(1).max(1);
    let mut page = LogsPage {
        chrome,
        requests: filter.kind == "requests",
        errors: Vec::new(),
        calls: Vec::new(),
        detail: None,
        problem: String::new(),
        page: asked_page,
        pages: 1,
        total: 0,
        filter,
    };
    let loaded = if page.requests {
        requests(&state, &mut page, per_page).await
    } else {
        errors(&state, &mut page, per_page).await
    };
    if let Err(problem) = loaded {
        page.problem = problem;
    }
    if let Ok(id) = page.filter.detail.parse::<i64>() {
        match state
            .logging
            .clone()
            .get_error_log(pb::GetErrorLogRequest { id })
            .await
        {
            Ok(log) => {
                let log = log.into_inner();
                let record = log.record.unwrap_or_default();
                page.detail = Some(Detail {
                    id: log.id,
                    time: when(record.at_ms),
                    key: record.key_masked,
                    model: record.model,
                    code: record.error_code,
                    kind: record.error_type,
                    client: record.client,
                    message: pretty(&record.error_message),
                    request_body: pretty(&record.request_body),
                });
            }
            Err(status) => page.problem = status.message().to_owned(),
        }
    }
    render(&page)
}

/// A body as it reads best: JSON indented, anything else as it came.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .filter(serde_json::Value::is_object)
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

async fn errors(state: &GatewayState, page: &mut LogsPage, per_page: usize) -> Result<(), String> {
    let filter = &page.filter;
    let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
    let query = ListQuery {
        limit: Some(u32::try_from(per_page).unwrap_or(50)),
        offset: Some(u32::try_from((page.page - 1) * per_page).unwrap_or(u32::MAX)),
        key_search: text(&filter.key),
        error_search: text(&filter.text),
        error_code_search: text(&filter.code),
        start_date: text(&filter.from),
        end_date: text(&filter.to),
        sort_by: Some(match filter.sort.as_str() {
            "time" => "request_time".to_owned(),
            "code" => "error_code".to_owned(),
            "model" => "model_name".to_owned(),
            _ => "id".to_owned(),
        }),
        sort_order: Some(if filter.dir == "asc" { "asc" } else { "desc" }.to_owned()),
    };
    let (logs, total) = error_logs(state, &query).await.map_err(|error| error.1)?;
    page.total = total;
    page.pages = usize::try_from(total)
        .unwrap_or(usize::MAX)
        .div_ceil(per_page)
        .max(1);
    page.errors = logs
        .into_iter()
        .map(|log| {
            let record = log.record.unwrap_or_default();
            ErrorRow {
                id: log.id,
                time: when(record.at_ms),
                key: record.key_masked,
                model: record.model,
                code: record.error_code,
                kind: record.error_type,
                message: record.error_message.chars().take(300).collect(),
            }
        })
        .collect();
    Ok(())
}

/// A time as the date filters take it (`YYYY-MM-DDTHH:MM`, UTC), cut to its minute.
fn minute_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// The most calls one listing reads (the newest of the window).
const MAX_CALLS: u32 = 10_000;

async fn requests(
    state: &GatewayState,
    page: &mut LogsPage,
    per_page: usize,
) -> Result<(), String> {
    let filter = &page.filter;
    let now = gb_runtime::now_ms();
    let since_ms = match (filter.from.trim(), filter.period.as_str()) {
        ("", "1m") => now - 60_000,
        ("", "1h") => now - 3_600_000,
        ("", "30d") => now - 30 * 86_400_000,
        ("", _) => now - 86_400_000,
        (from, _) => parse_time("from", from).map_err(|error| error.1)?,
    };
    let until_ms = match filter.to.trim() {
        "" => i64::MAX,
        to => parse_time("to", to).map_err(|error| error.1)?,
    };
    let code: Option<u32> = match filter.code.trim() {
        "" => None,
        code => Some(
            code.parse()
                .map_err(|_| format!("{code:?} is not a status code"))?,
        ),
    };
    let key = filter.key.trim();
    let key_id = match key {
        "" => 0,
        _ if key.len() > 24 && !key.contains('…') || key.parse::<i64>().is_ok() => {
            match find_key(state, key).await.map_err(|error| error.1)? {
                Some((id, _)) => id,
                None => return Ok(()),
            }
        }
        _ => 0,
    };
    let calls = state
        .logging
        .clone()
        .list_calls(pb::ListCallsRequest {
            since_ms,
            key_id,
            limit: MAX_CALLS,
        })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .calls;
    let masked_search = (key_id == 0 && !key.is_empty()).then(|| key.to_lowercase());
    let mut selected: Vec<pb::RequestRecord> = calls
        .into_iter()
        .filter(|call| call.at_ms <= until_ms)
        .filter(|call| code.is_none_or(|code| call.status_code == code))
        .filter(|call| {
            masked_search
                .as_deref()
                .is_none_or(|search| call.key_masked.to_lowercase().contains(search))
        })
        .collect();
    selected.sort_by_key(|call| std::cmp::Reverse(call.at_ms));
    if page.filter.dir == "asc" {
        selected.reverse();
    }
    page.total = selected.len() as u64;
    page.pages = selected.len().div_ceil(per_page).max(1);
    page.page = page.page.min(page.pages);
    page.calls = selected
        .into_iter()
        .skip((page.page - 1) * per_page)
        .take(per_page)
        .map(|call| CallRow {
            error_logs: format!(
                "/console/logs?{}",
                query_string(&[
                    ("key", call.key_masked.clone()),
                    ("from", minute_text(call.at_ms)),
                    ("to", minute_text(call.at_ms + 60_000)),
                ])
            ),
            time: when(call.at_ms),
            key: call.key_masked,
            model: call.model,
            client: call.client,
            path: call.path,
            code: call.status_code,
            latency_ms: call.latency_ms,
            tokens: call.prompt_tokens + call.completion_tokens,
            attempts: call.attempts,
        })
        .collect();
    Ok(())
}
