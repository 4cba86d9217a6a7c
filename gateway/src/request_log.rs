//! The request log of the gateway: one record per client request (method, path without the
//! `key` parameter, status, latency, the client token's name), sent to the logging service in
//! batches off the request path. The caller's name also travels to the chat service in each
//! call's `CallContext`, whose attempt records carry it (tokens per client token).

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use gb_proto::logging::v1 as pb;
use gb_runtime::log_records::LogRecord;
use gb_runtime::now_ms;

use crate::auth::Caller;
use crate::state::GatewayState;

/// Where the auth middleware leaves the caller's name for the request log.
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<String>>);

/// Names the caller of a request in its request-log record.
pub fn name_caller(request: &Request, name: &str) {
    if let Some(slot) = request.extensions().get::<CallerSlot>() {
        let _ = slot.0.set(name.to_owned());
    }
}

/// Runs the rest of a client request as `caller`: its name reaches the request log, and the
/// handlers put it in the `CallContext` of their calls.
pub async fn as_caller(caller: Caller, mut request: Request, next: Next) -> Response {
    name_caller(&request, &caller.0);
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The path and query as recorded: the `key` parameter (a client token) removed, key values
/// (in gemini-balance's admin paths and queries) masked.
fn recorded_path(uri: &http::Uri) -> String {
    let path = crate::router::loggable_path(uri.path());
    let Some(query) = uri.query() else {
        return path;
    };
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name != "key")
        .map(|(name, value)| {
            // gemini-balance's admin UI names keys in the query (`gemini_key=`, `key_search=`).
            let value = if value.starts_with("AIza") || name == "gemini_key" {
                gb_runtime::secrets::mask_key(&value)
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect();
    if kept.is_empty() {
        return path;
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{path}?{query}")
}

/// The model a Gemini path names (`…/models/{model}:action`), if any.
fn model_of(path: &str) -> String {
    path.split_once("/models/")
        .map(|(_, rest)| rest.split(':').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Records every request but the health checks.
pub async fn record_request(
    State(state): State<GatewayState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().to_string();
    let path = recorded_path(request.uri());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.logs.push(LogRecord::Request(pb::RequestRecord {
        at_ms: now_ms(),
        kind: pb::RecordKind::Client.into(),
        method,
        model: model_of(&path),
        path,
        status_code: u32::from(response.status().as_u16()),
        latency_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        client: slot.0.get().cloned().unwrap_or_default(),
        ..Default::default()
    }));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_parameter_is_never_recorded() {
        let uri: http::Uri =
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=sk-client-secret"
                .parse()
                .unwrap();
        let path = recorded_path(&uri);
        assert_eq!(
            path,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(model_of(&path), "gemini-2.5-flash");
        let uri: http::Uri = "/gemini/v1beta/verify-key/AIzaSyA-secret-secret-secret-0123456"
            .parse()
            .unwrap();
        assert_eq!(recorded_path(&uri), "/gemini/v1beta/verify-key/AIzaSy…3456");
    }
}
