//! Managed client tokens as this gateway checks them, with no RPC per request: the keys
//! service pushes the whole list (fingerprints, never values) whenever it changes, so that a
//! revoked token stops working here as soon as the push arrives; the logging service's counters
//! give each token's tokens spent in the last minute, today and this month (UTC), read once a
//! second. A request is refused when its token is disabled or expired (as an unknown token), has
//! spent a budget or its tokens per minute, or has sent `rpm` requests in the last minute on
//! this gateway (429 with `Retry-After`). Its model rule travels with its calls to the chat
//! service, which refuses another model with 403 before any attempt.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gb_proto::chat::ChatError;
use gb_proto::keys::v1 as keys;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_proto::logging::v1 as logs;
use gb_proto::logging::v1::logging_service_client::LoggingServiceClient;
use gb_runtime::grpc::GrpcChannel;
use gb_runtime::secrets::tokens_match;
use tokio_util::sync::CancellationToken;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// What a token has spent, as the request logs' counters say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub tokens_last_minute: u64,
    pub tokens_today: u64,
    pub tokens_this_month: u64,
}

/// Why a managed token may not call now.
#[derive(Debug)]
pub enum Refusal {
    /// Unknown, disabled or expired: answered as any unknown token.
    Unknown,
    /// A limit or budget: the answer (429 with `Retry-After`).
    Limited(ChatError),
}

pub struct ManagedTokens {
    /// Whether the first list has arrived.
    loaded: tokio::sync::watch::Sender<bool>,
    /// Fingerprint → token, as last pushed.
    tokens: RwLock<HashMap<String, Arc<keys::ClientToken>>>,
    /// Caller name → what it spent, as last read.
    spent: RwLock<HashMap<String, Spent>>,
    /// Token id → when its requests of the last minute came (this gateway's).
    recent: Mutex<HashMap<i64, VecDeque<i64>>>,
}

fn limited(message: String, retry_after_ms: i64) -> Refusal {
    let mut error = ChatError::local(429, message);
    error.retry_after_seconds = u32::try_from((retry_after_ms.max(0) + 999) / 1000).ok();
    Refusal::Limited(error)
}

/// The start of the next UTC day and month after `now_ms`.
fn next_day_and_month(now_ms: i64) -> (i64, i64) {
    let next_day = now_ms - now_ms.rem_euclid(DAY_MS) + DAY_MS;
    (next_day, gb_runtime::time::month_start_ms(now_ms, 1))
}

impl Default for ManagedTokens {
    fn default() -> Self {
        ManagedTokens {
            loaded: tokio::sync::watch::channel(false).0,
            tokens: RwLock::default(),
            spent: RwLock::default(),
            recent: Mutex::default(),
        }
    }
}

impl ManagedTokens {
    /// Waits until the keys service's first list has arrived, or `limit` has passed; true when
    /// it has (a gateway that served before would refuse every managed token meanwhile).
    pub async fn wait_loaded(&self, limit: Duration) -> bool {
        let mut loaded = self.loaded.subscribe();
        tokio::time::timeout(limit, loaded.wait_for(|loaded| *loaded))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// The pushed list replaces the one before.
    pub fn replace(&self, snapshot: keys::ClientTokenSnapshot) {
        let tokens: HashMap<String, Arc<keys::ClientToken>> = snapshot
            .tokens
            .into_iter()
            .map(|token| (token.fingerprint.clone(), Arc::new(token)))
            .collect();
        let ids: Vec<i64> = tokens.values().map(|token| token.id).collect();
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| ids.contains(id));
        self.loaded.send_replace(true);
    }

    pub fn is_empty(&self) -> bool {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// What a caller has spent, as last read.
    pub fn spent(&self, caller: &str) -> Spent {
        self.spent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(caller)
            .copied()
            .unwrap_or_default()
    }

    /// The token whose fingerprint this is, if it may call now; counts the request.
    pub fn admit(&self, fingerprint: &str, now_ms: i64) -> Result<Arc<keys::ClientToken>, Refusal> {
        let token = {
            let tokens = self
                .tokens
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Found by the fingerprint, then compared in constant time.
            tokens
                .get(fingerprint)
                .filter(|token| tokens_match(fingerprint, &token.fingerprint))
                .cloned()
        };
        let Some(token) = token else {
            return Err(Refusal::Unknown);
        };
        let spec = token.spec.clone().unwrap_or_default();
        if !token.enabled || spec.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Err(Refusal::Unknown);
        }
        let spent = self.spent(&token.caller);
        let (next_day, next_month) = next_day_and_month(now_ms);
        let budgets = [
            (
                spec.monthly_token_budget,
                spent.tokens_this_month,
                "monthly",
                "the next month (UTC)",
                next_month,
            ),
            (
                spec.daily_token_budget,
                spent.tokens_today,
                "daily",
                "midnight UTC",
                next_day,
            ),
        ];
        for (budget, spent, period, starts_over, at_ms) in budgets {
            if let Some(budget) = budget
                && spent >= budget
            {
                return Err(limited(
                    format!(
                        "this client token has spent its {period} token budget ({budget} tokens); it starts over at {starts_over}"
                    ),
                    at_ms - now_ms,
                ));
            }
        }
        if let Some(tpm) = spec.tpm
            && spent.tokens_last_minute >= tpm
        {
            return Err(limited(
                format!("this client token is over its {tpm} tokens per minute"),
                MINUTE_MS,
            ));
        }
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let arrivals = recent.entry(token.id).or_default();
        while arrivals.front().is_some_and(|at| *at <= now_ms - MINUTE_MS) {
            arrivals.pop_front();
        }
        if let Some(rpm) = spec.rpm
            && arrivals.len() as u64 >= rpm
        {
            let free_at = arrivals
                .front()
                .map_or(now_ms + MINUTE_MS, |at| at + MINUTE_MS);
            return Err(limited(
                format!("this client token is over its {rpm} requests per minute"),
                free_at - now_ms,
            ));
        }
        arrivals.push_back(now_ms);
        Ok(token)
    }

    fn set_spent(&self, spent: HashMap<String, Spent>) {
        *self
            .spent
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = spent;
    }
}

/// Follows the keys service's list of managed tokens for as long as the process runs.
pub async fn follow(
    tokens: Arc<ManagedTokens>,
    client: KeysServiceClient<GrpcChannel>,
    shutdown: CancellationToken,
) {
    gb_runtime::grpc::follow_stream(
        "client tokens",
        shutdown,
        || {
            let mut client = client.clone();
            async move {
                client
                    .watch_client_tokens(keys::WatchClientTokensRequest {})
                    .await
            }
        },
        |snapshot: keys::ClientTokenSnapshot| tokens.replace(snapshot),
    )
    .await;
}

/// Reads what each client has spent (last minute, today, this month) once a second, while
/// there are managed tokens.
pub async fn follow_spending(
    tokens: Arc<ManagedTokens>,
    client: LoggingServiceClient<GrpcChannel>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if tokens.is_empty() {
            continue;
        }
        match read_spending(client.clone(), gb_runtime::now_ms()).await {
            Ok(spent) => tokens.set_spent(spent),
            Err(status) => {
                tracing::warn!(error = %status.message(), "client token usage not read");
            }
        }
    }
}

async fn read_spending(
    mut client: LoggingServiceClient<GrpcChannel>,
    now_ms: i64,
) -> Result<HashMap<String, Spent>, tonic::Status> {
    use chrono::Datelike;
    let month_start = chrono::DateTime::from_timestamp_millis(now_ms)
        .and_then(|now| chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1))
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(now_ms - 31 * DAY_MS, |start| {
            start.and_utc().timestamp_millis()
        });
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|now| now.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut spent: HashMap<String, Spent> = HashMap::new();
    for (since_ms, of_minute) in [(month_start, false), (now_ms - MINUTE_MS, true)] {
        let rows = client
            .token_usage(logs::TokenUsageRequest {
                group_by: logs::TokenGrouping::Client.into(),
                since_ms,
            })
            .await?
            .into_inner()
            .rows;
        for row in rows {
            let tokens = row.prompt_tokens + row.completion_tokens;
            let entry = spent.entry(row.group).or_default();
            if of_minute {
                entry.tokens_last_minute += tokens;
            } else {
                entry.tokens_this_month += tokens;
                if row.day == today {
                    entry.tokens_today += tokens;
                }
            }
        }
    }
    Ok(spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: i64, spec: keys::ClientTokenSpec) -> keys::ClientToken {
        keys::ClientToken {
            id,
            spec: Some(spec),
            masked: "sk-gb-…abcd".into(),
            caller: format!("token-{id}"),
            enabled: true,
            created_at_ms: 0,
            fingerprint: format!("fp-{id}"),
        }
    }

    fn refused_after(result: Result<Arc<keys::ClientToken>, Refusal>) -> Option<u32> {
        match result {
            Err(Refusal::Limited(error)) => error.retry_after_seconds,
            _ => None,
        }
    }

    #[test]
    fn rates_and_budgets_refuse_with_their_wait() {
        let tokens = ManagedTokens::default();
        tokens.replace(keys::ClientTokenSnapshot {
            tokens: vec![
                token(
                    1,
                    keys::ClientTokenSpec {
                        rpm: Some(2),
                        ..Default::default()
                    },
                ),
                token(
                    2,
                    keys::ClientTokenSpec {
                        daily_token_budget: Some(100),
                        expires_at_ms: Some(5_000_000),
                        ..Default::default()
                    },
                ),
            ],
        });
        let now = 1_000_000;
        assert!(tokens.admit("fp-1", now).is_ok());
        assert!(tokens.admit("fp-1", now + 1_000).is_ok());
        assert_eq!(refused_after(tokens.admit("fp-1", now + 2_000)), Some(58));
        assert!(tokens.admit("fp-1", now + MINUTE_MS).is_ok());
        assert!(tokens.admit("fp-2", now).is_ok());
        tokens.set_spent(HashMap::from([(
            "token-2".to_owned(),
            Spent {
                tokens_today: 100,
                ..Default::default()
            },
        )]));
        let wait = refused_after(tokens.admit("fp-2", now)).unwrap_or_default();
        assert_eq!(i64::from(wait), (DAY_MS - now) / 1000, "until midnight UTC");
        assert!(
            matches!(tokens.admit("fp-2", 5_000_000), Err(Refusal::Unknown)),
            "expired"
        );
        assert!(matches!(tokens.admit("fp-3", now), Err(Refusal::Unknown)));
        tokens.replace(keys::ClientTokenSnapshot { tokens: vec![] });
        assert!(
            matches!(tokens.admit("fp-1", now), Err(Refusal::Unknown)),
            "revoked"
        );
    }

    #[test]
    fn the_next_month_starts_on_its_first_day() {
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_millis())
                .unwrap_or_default()
        };
        assert_eq!(
            next_day_and_month(at("2026-12-07T10:00:00Z")),
            (at("2026-12-08T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
    }
}
