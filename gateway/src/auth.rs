//! Who may call: client tokens (`ALLOWED_TOKENS`, plus the admin token) the way each client
//! family sends them (`x-goog-api-key`, `key=` query, `Authorization: Bearer`), and the admin
//! token (`AUTH_TOKEN`) alone on administrative routes. Comparisons take constant time.

use axum::http::HeaderMap;
use gb_runtime::secrets::tokens_match;
use sha2::{Digest, Sha256};

pub struct Auth {
    client_tokens: Vec<String>,
    /// `None`: administrative routes are closed.
    admin_token: Option<String>,
}

/// An authenticated caller, named without its token.
#[derive(Clone, Debug)]
pub struct Caller(pub String);

impl Caller {
    /// Who asks, as every call to the chat service carries it (a fresh request id each call).
    pub fn call_context(&self) -> Option<gb_proto::chat::v1::CallContext> {
        Some(gb_proto::chat::v1::CallContext {
            caller: self.0.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
        })
    }
}

impl Auth {
    pub fn new(client_tokens: Vec<String>, admin_token: Option<String>) -> Self {
        Auth {
            client_tokens,
            admin_token,
        }
    }

    /// `ALLOWED_TOKENS` (changeable while running) and `AUTH_TOKEN` (from the environment).
    pub fn from_settings(settings: &gb_runtime::settings::Settings) -> Self {
        Auth::new(settings.allowed_tokens.clone(), settings.auth_token.clone())
    }

    fn is_client_token(&self, presented: &str) -> bool {
        // Check every token, so that timing does not tell which one matched.
        let mut matched = false;
        for token in &self.client_tokens {
            matched |= tokens_match(presented, token);
        }
        if let Some(admin) = &self.admin_token {
            matched |= tokens_match(presented, admin);
        }
        matched
    }

    /// The caller of a client route, or `None` for a missing or unknown token.
    pub fn client(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Caller> {
        let presented = presented_client_token(headers, query)?;
        self.is_client_token(&presented)
            .then(|| caller_id(&presented))
    }

    /// Whether the request carries the admin token (`Authorization`, `Bearer` optional).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        let Some(admin) = &self.admin_token else {
            return false;
        };
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.strip_prefix("Bearer ").unwrap_or(value).trim())
            .is_some_and(|presented| tokens_match(presented, admin))
    }
}

fn presented_client_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
    {
        return Some(value.trim().to_owned());
    }
    if let Some(query) = query {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if name == "key" {
                return Some(value.into_owned());
            }
        }
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned())
}

/// A stable, non-reversible name for a token, for logs and records.
fn caller_id(token: &str) -> Caller {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Caller(format!("token-{hex}"))
}
