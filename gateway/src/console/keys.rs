//! `/console/keys`: the pool's counts, the call cards, the attention keys and the key table
//! (search, status, failure threshold, sort, pages: the whole pool is read once and cut here,
//! which stays fast at 10,000 keys), and the bulk add of keys found in pasted text.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gb_proto::keys::v1 as pb;
use gb_proto::logging::v1 as logs;
use serde::Deserialize;

use super::{Chrome, duration_text, failure, query_string, render, when};
use crate::state::GatewayState;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filter {
    pub q: String,
    pub status: String,
    pub min_failures: u32,
    pub sort: String,
    pub dir: String,
    pub page: usize,
    pub per_page: usize,
}

impl Filter {
    fn pairs(&self, sort: &str, dir: &str, page: usize) -> String {
        let pairs = [
            ("q", self.q.clone()),
            ("status", self.status.clone()),
            (
                "min_failures",
                if self.min_failures > 0 {
                    self.min_failures.to_string()
                } else {
                    String::new()
                },
            ),
            ("sort", sort.to_owned()),
            ("dir", dir.to_owned()),
            ("per_page", self.per_page.to_string()),
            ("page", page.to_string()),
        ];
        format!("/console/keys?{}", query_string(&pairs))
    }

    /// The link to another page of the same list.
    pub fn at_page(&self, page: usize) -> String {
        self.pairs(&self.sort, &self.dir, page)
    }

    /// The link that sorts by `column` (again: the other way).
    pub fn sorted(&self, column: &str) -> String {
        let dir = if self.sort == column && self.dir != "desc" {
            "desc"
        } else {
            "asc"
        };
        self.pairs(column, dir, 1)
    }
}

pub struct Counts {
    pub active: usize,
    pub cooling: usize,
    pub disabled: usize,
}

pub struct CallCard {
    pub label: &'static str,
    pub period: &'static str,
    pub total: u64,
    pub success: u64,
    pub failure: u64,
}

pub struct KeyRow {
    pub id: i64,
    pub masked: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub failures: u32,
    pub cooldown_left: String,
    pub last_error: String,
    pub last_used: String,
    pub calls: u64,
    pub tokens: u64,
}

pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub total: usize,
}

#[derive(Default)]
pub struct AddReport {
    pub found: usize,
    pub added: Vec<String>,
    pub duplicates: usize,
    pub existing: Vec<String>,
    pub failed: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Chrome,
    counts: Counts,
    calls: Vec<CallCard>,
    attention: Vec<logs::KeyCount>,
    report: Option<AddReport>,
    filter: Filter,
    rows: Vec<KeyRow>,
    pager: Pager,
}

fn status_of(key: &pb::Key) -> &'static str {
    match key.status() {
        pb::KeyStatus::Active => "active",
        pb::KeyStatus::CoolingDown => "cooling",
        pb::KeyStatus::Disabled | pb::KeyStatus::Unspecified => "disabled",
    }
}

/// Whether a key matches the search: its id, a part of its masked form, or its full value
/// (compared by mask: the page never holds full values).
fn matches(key: &pb::Key, search: &str) -> bool {
    let search = search.trim();
    search.is_empty()
        || search.parse::<i64>().is_ok_and(|id| id == key.id)
        || key
            .masked_value
            .to_lowercase()
            .contains(&search.to_lowercase())
        || (search.len() > 12 && gb_runtime::secrets::mask_key(search) == key.masked_value)
}

fn sort_keys(keys: &mut [(pb::Key, u64)], sort: &str, descending: bool) {
    let calls = |key: &pb::Key| key.success_count + key.failure_total;
    match sort {
        "status" => keys.sort_by_key(|(key, _)| (key.status, key.id)),
        "failures" => keys.sort_by_key(|(key, _)| (key.failure_count, key.id)),
        "last_used" => keys.sort_by_key(|(key, _)| (key.last_used_ms, key.id)),
        "calls" => keys.sort_by_key(|(key, _)| (calls(key), key.id)),
        "tokens" => keys.sort_by_key(|(key, tokens)| (*tokens, key.id)),
        _ => keys.sort_by_key(|(key, _)| key.id),
    }
    if descending {
        keys.reverse();
    }
}

pub async fn page(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<Filter>,
) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "keys") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    match keys_page(&state, chrome, filter, None).await {
        Ok(page) => render(&page),
        Err((chrome, status)) => failure(&chrome, &status),
    }
}

async fn keys_page(
    state: &GatewayState,
    chrome: Chrome,
    mut filter: Filter,
    report: Option<AddReport>,
) -> Result<KeysPage, (Chrome, tonic::Status)> {
    let now = gb_runtime::now_ms();
    let loaded = async {
        let keys = state
            .keys
            .clone()
            .list_keys(pb::ListKeysRequest::default())
            .await?
            .into_inner()
            .keys;
        let mut logging = state.logging.clone();
        let counts = logging
            .call_counts(logs::CallCountsRequest {})
            .await?
            .into_inner();
        let tokens = logging
            .key_totals(logs::KeyTotalsRequest {
                since_ms: now - 86_400_000,
            })
            .await?
            .into_inner()
            .keys;
        let attention = logging
            .attention_keys(logs::AttentionKeysRequest {
                since_ms: now - 86_400_000,
                status_code: 429,
                limit: 10,
            })
            .await?
            .into_inner()
            .keys;
        Ok::<_, tonic::Status>((keys, counts, tokens, attention))
    };
    let (keys, counts, tokens, attention) = match loaded.await {
        Ok(loaded) => loaded,
        Err(status) => return Err((chrome, status)),
    };
    let mut tokens_of: HashMap<i64, u64> = HashMap::new();
    for key in tokens {
        *tokens_of.entry(key.key_id).or_default() += key.prompt_tokens + key.completion_tokens;
    }
    let t = chrome.t;
    let counted = |status| keys.iter().filter(|key| status_of(key) == status).count();
    let pool = Counts {
        active: counted("active"),
        cooling: counted("cooling"),
        disabled: counted("disabled"),
    };
    let card = |label, period, counts: Option<logs::Counts>| {
        let counts = counts.unwrap_or_default();
        CallCard {
            label,
            period,
            total: counts.total,
            success: counts.success,
            failure: counts.failure,
        }
    };
    let calls = vec![
        card(t.calls_minute, "1m", counts.last_minute),
        card(t.calls_hour, "1h", counts.last_hour),
        card(t.calls_day, "24h", counts.last_day),
        card(t.calls_month, "30d", counts.this_month),
    ];
    if !matches!(filter.per_page, 20 | 50 | 100 | 500) {
        filter.per_page = 50;
    }
    let mut listed: Vec<(pb::Key, u64)> = keys
        .into_iter()
        .filter(|key| filter.status.is_empty() || status_of(key) == filter.status)
        .filter(|key| key.failure_count >= filter.min_failures)
        .filter(|key| matches(key, &filter.q))
        .map(|key| {
            let tokens = tokens_of.get(&key.id).copied().unwrap_or_default();
            (key, tokens)
        })
        .collect();
    sort_keys(&mut listed, &filter.sort, filter.dir == "desc");
    let total = listed.len();
    let pages = total.div_ceil(filter.per_page).max(1);
    filter.page = filter.page.clamp(1, pages);
    let rows = listed
        .into_iter()
        .skip((filter.page - 1) * filter.per_page)
        .take(filter.per_page)
        .map(|(key, tokens)| {
            let status = status_of(&key);
            let mut cooldown_left = duration_text(key.cooldown_until_ms - now);
            let resting = key
                .model_cooldowns
                .iter()
                .filter(|cooling| cooling.until_ms > now)
                .count();
            if resting > 0 {
                cooldown_left = format!("{cooldown_left} ({resting} {})", t.model)
                    .trim()
                    .to_owned();
            }
            KeyRow {
                id: key.id,
                masked: key.masked_value.clone(),
                status,
                status_label: match status {
                    "active" => t.status_active,
                    "cooling" => t.status_cooling,
                    _ => t.status_disabled,
                },
                failures: key.failure_count,
                cooldown_left,
                last_error: key.last_error.clone(),
                last_used: when(key.last_used_ms),
                calls: key.success_count + key.failure_total,
                tokens,
            }
        })
        .collect();
    Ok(KeysPage {
        chrome,
        counts: pool,
        calls,
        attention,
        report,
        pager: Pager {
            page: filter.page,
            pages,
            total,
        },
        filter,
        rows,
    })
}

/// Every Gemini key in a text, by gemini-balance's pattern (`AIzaSy` and 33 characters that
/// are not spaces), in order, with how many were repeats.
pub fn keys_in(text: &str) -> (Vec<String>, usize) {
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"AIzaSy\S{33}").ok());
    let Some(pattern) = PATTERN.as_ref() else {
        return (Vec::new(), 0);
    };
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    let mut repeats = 0;
    for found in pattern.find_iter(text) {
        if seen.insert(found.as_str()) {
            keys.push(found.as_str().to_owned());
        } else {
            repeats += 1;
        }
    }
    (keys, repeats)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /console/keys/add`: adds every key found in the pasted text and shows what became of
/// each (added, repeated in the text, already stored, refused).
pub async fn add(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<AddForm>,
) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "keys") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    // The page's chrome holds the session's CSRF token already.
    if !gb_runtime::secrets::tokens_match(&form.csrf, &chrome.csrf) {
        return (StatusCode::FORBIDDEN, chrome.t.csrf_refused).into_response();
    }
    let (found, duplicates) = keys_in(&form.text);
    let mut report = AddReport {
        found: found.len() + duplicates,
        duplicates,
        ..AddReport::default()
    };
    for key in found {
        let masked = gb_runtime::secrets::mask_key(&key);
        match state
            .keys
            .clone()
            .create_key(pb::CreateKeyRequest {
                key_value: key,
                key_type: String::new(),
            })
            .await
        {
            Ok(_) => report.added.push(masked),
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                report.existing.push(masked);
            }
            Err(status) => report
                .failed
                .push(format!("{masked}: {}", status.message())),
        }
    }
    match keys_page(&state, chrome, Filter::default(), Some(report)).await {
        Ok(page) => render(&page),
        Err((chrome, status)) => failure(&chrome, &status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_any_text_with_their_repeats_counted() {
        let one = format!("AIzaSy{}", "A".repeat(33));
        let two = format!("AIzaSy{}", "b1-_".repeat(8) + "z");
        let text = format!("keys: {one}, \"{two}\"\n{one} AIzaSyTooShort");
        let (keys, repeats) = keys_in(&text);
        assert_eq!(keys, [one, two]);
        assert_eq!(repeats, 1);
    }
}
