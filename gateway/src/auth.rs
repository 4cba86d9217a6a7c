//! Who may call: client tokens (`ALLOWED_TOKENS`, plus the admin token) the way each client
//! family sends them (`x-goog-api-key`, `key=` query, `Authorization: Bearer`, Anthropic's
//! `x-api-key`), and the admin
//! token (`AUTH_TOKEN`) alone on administrative routes. Comparisons take constant time.

use axum::http::HeaderMap;
use gb_runtime::secrets::{KeyCipher, tokens_match};

pub struct Auth {
    /// Each client token with the name its caller gets (`KeyCipher::caller_id`, a keyed hash
    /// of the token, made once here rather than on every request).
    client_tokens: Vec<(String, String)>,
    /// `None`: administrative routes are closed.
    admin_token: Option<String>,
    /// The admin token's name as a client.
    admin_name: String,
}

/// An authenticated caller, named without its token, with its request's log entry.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub(crate) request: Option<std::sync::Arc<crate::request_log::RequestEntry>>,
    /// A managed client token's model rule (globs); empty: any model.
    pub allowed_models: Vec<String>,
}

impl Caller {
    pub fn named(name: String) -> Self {
        Caller {
            name,
            request: None,
            allowed_models: Vec::new(),
        }
    }

    /// Records the label the client gave itself in its request (`metadata.user_id`, `user`)
    /// with the request's row. Call it before the first call to the chat service.
    pub fn label(&self, label: Option<&str>) {
        if let (Some(entry), Some(label)) = (self.request.as_deref(), label) {
            entry.label(label);
        }
    }

    /// Who asks, as every call to the chat service carries it (a fresh request id each call).
    /// The first call of a request also carries the request itself: the chat service writes
    /// its request-log row, with the key, tokens and attempts that answered it.
    pub fn call_context(&self) -> Option<gb_proto::chat::v1::CallContext> {
        Some(gb_proto::chat::v1::CallContext {
            caller: self.name.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request: self
                .request
                .as_deref()
                .and_then(crate::request_log::RequestEntry::hand_over),
            allowed_models: self.allowed_models.clone(),
        })
    }
}

impl Auth {
    pub fn new(client_tokens: Vec<String>, admin_token: Option<String>, names: KeyCipher) -> Self {
        let admin_name = admin_token
            .as_deref()
            .map(|token| names.caller_id(token))
            .unwrap_or_default();
        Auth {
            client_tokens: client_tokens
                .into_iter()
                .map(|token| {
                    let name = names.caller_id(&token);
                    (token, name)
                })
                .collect(),
            admin_token,
            admin_name,
        }
    }

    /// `ALLOWED_TOKENS` (changeable while running) and `AUTH_TOKEN` (from the environment).
    pub fn from_settings(settings: &gb_runtime::settings::Settings, names: KeyCipher) -> Self {
        Auth::new(
            settings.gateway.allowed_tokens.expose().clone(),
            settings
                .shared
                .auth_token
                .as_ref()
                .map(|token| token.expose().clone()),
            names,
        )
    }

    /// The name of the caller that presents this token, if it is a client token (or the admin
    /// token).
    fn client_name(&self, presented: &str) -> Option<&str> {
        // Compare with every token, so that timing does not tell which one matched.
        let mut name = None;
        for (token, token_name) in &self.client_tokens {
            if tokens_match(presented, token) {
                name = Some(token_name.as_str());
            }
        }
        if let Some(admin) = &self.admin_token
            && tokens_match(presented, admin)
        {
            name = Some(self.admin_name.as_str());
        }
        name
    }

    /// The caller of a client route, or `None` for a missing or unknown token.
    pub fn client(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Caller> {
        let presented = presented_client_token(headers, query)?;
        self.client_name(&presented)
            .map(|name| Caller::named(name.to_owned()))
    }

    /// The admin token's name as a caller (the console's, too).
    pub(crate) fn admin_name(&self) -> &str {
        &self.admin_name
    }

    /// The admin token, which console sessions are bound to.
    pub(crate) fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Whether a caller named so presented the admin token (on a client route).
    pub fn is_admin_caller(&self, name: &str) -> bool {
        !self.admin_name.is_empty() && self.admin_name == name
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

/// The client token a request presents, the way its family sends it.
pub fn presented_client_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
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
    if let Some(value) = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
    {
        return Some(value.trim().to_owned());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn names() -> KeyCipher {
        let Ok(cipher) = KeyCipher::from_base64(&KeyCipher::generate_base64()) else {
            panic!("a generated key is valid");
        };
        cipher
    }

    fn auth() -> Auth {
        Auth::new(
            vec!["sk-client-1".into(), "sk-client-2".into()],
            Some("sk-admin".into()),
            names(),
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                *name,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        headers
    }

    #[test]
    fn a_client_token_is_accepted_the_way_each_family_sends_it() {
        let auth = auth();
        let by_header = auth.client(&headers(&[("x-goog-api-key", "sk-client-1")]), None);
        let by_query = auth.client(&HeaderMap::new(), Some("alt=sse&key=sk-client-1"));
        let by_bearer = auth.client(&headers(&[("authorization", "Bearer sk-client-1")]), None);
        let by_api_key = auth.client(&headers(&[("x-api-key", "sk-client-1")]), None);
        let names: Vec<String> = [by_header, by_query, by_bearer, by_api_key]
            .into_iter()
            .map(|caller| caller.map(|caller| caller.name).unwrap_or_default())
            .collect();
        assert!(names[0].starts_with("token-") && names[0].len() == "token-".len() + 12);
        assert!(
            names.iter().all(|name| name == &names[0]),
            "one name per token: {names:?}"
        );
        assert!(
            !names[0].contains("sk-client"),
            "the name never carries the token"
        );
        let other = auth.client(&headers(&[("x-goog-api-key", "sk-client-2")]), None);
        assert_ne!(other.map(|caller| caller.name), Some(names[0].clone()));
    }

    #[test]
    fn unknown_missing_and_malformed_tokens_are_refused() {
        let auth = auth();
        assert!(auth.client(&HeaderMap::new(), None).is_none());
        assert!(
            auth.client(&headers(&[("x-goog-api-key", "sk-client-3")]), None)
                .is_none()
        );
        assert!(
            auth.client(&headers(&[("authorization", "sk-client-1")]), None)
                .is_none(),
            "client routes need Bearer"
        );
        assert!(auth.client(&HeaderMap::new(), Some("key=")).is_none());
        assert!(
            auth.client(&headers(&[("x-goog-api-key", "sk-client-")]), None)
                .is_none(),
            "a prefix is not the token"
        );
    }

    #[test]
    fn the_admin_token_is_a_client_token_too_but_not_the_reverse() {
        let auth = auth();
        assert!(
            auth.client(&headers(&[("x-goog-api-key", "sk-admin")]), None)
                .is_some()
        );
        assert!(auth.is_admin(&headers(&[("authorization", "Bearer sk-admin")])));
        assert!(
            auth.is_admin(&headers(&[("authorization", "sk-admin")])),
            "Bearer optional"
        );
        assert!(!auth.is_admin(&headers(&[("authorization", "Bearer sk-client-1")])));
        assert!(
            !auth.is_admin(&headers(&[("x-goog-api-key", "sk-admin")])),
            "admin only in Authorization"
        );
        assert!(!auth.is_admin(&HeaderMap::new()));
    }

    #[test]
    fn without_an_admin_token_admin_routes_are_closed() {
        let auth = Auth::new(vec!["sk-client-1".into()], None, names());
        assert!(!auth.is_admin(&headers(&[("authorization", "Bearer ")])));
        assert!(!auth.is_admin(&headers(&[("authorization", "")])));
        assert!(
            auth.client(&headers(&[("authorization", "Bearer ")]), None)
                .is_none()
        );
    }
}
