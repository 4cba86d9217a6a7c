//! The request log of the gateway: one record per client request (method, path without the
//! `key` parameter, status, latency, the client token's name), sent to the logging service in
//! batches off the request path. A request answered by the chat service is handed over with
//! its first call (`Caller::call_context`): the chat service writes its row, with what the
//! attempt that answered it knew (key, status, tokens, attempts), and the gateway writes none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use gb_proto::logging::v1 as pb;
use gb_runtime::log_records::LogRecord;
use gb_runtime::now_ms;

use crate::auth::Caller;
use crate::state::GatewayState;

/// A request's log entry while it runs: what the row records, the caller's name once the auth
/// middleware knows it, and whether the chat service took the row over.
#[derive(Debug)]
pub struct RequestEntry {
    method: String,
    path: String,
    caller: OnceLock<String>,
    /// The label the client gave itself in its body, once a handler read it.
    label: OnceLock<String>,
    handed_over: AtomicBool,
}

impl RequestEntry {
    /// The request, for the first call that answers it; `None` for later calls.
    pub fn hand_over(&self) -> Option<gb_proto::chat::v1::ClientRequest> {
        (!self.handed_over.swap(true, Ordering::Relaxed)).then(|| {
            gb_proto::chat::v1::ClientRequest {
                method: self.method.clone(),
                path: self.path.clone(),
                label: self.label.get().cloned().unwrap_or_default(),
            }
        })
    }

    /// Records the label the client gave itself (the first one; cut to `MAX_LABEL` characters).
    pub fn label(&self, label: &str) {
        let label: String = label.chars().take(MAX_LABEL).collect();
        if !label.is_empty() {
            let _ = self.label.set(label);
        }
    }
}

/// The longest label kept, in characters.
pub const MAX_LABEL: usize = 256;

/// On an error answer: the call it answers never reached a chat handler, so the chat service
/// wrote no row for it (`errors.rs` marks it).
#[derive(Clone, Copy)]
pub struct CallNotRecorded;

/// Names the caller of a request in its request-log record.
pub fn name_caller(request: &Request, name: &str) {
    if let Some(entry) = request.extensions().get::<Arc<RequestEntry>>() {
        let _ = entry.caller.set(name.to_owned());
    }
}

/// Runs the rest of a client request as `caller`: its name reaches the request log, and the
/// handlers put it in the `CallContext` of their calls.
pub async fn as_caller(mut caller: Caller, mut request: Request, next: Next) -> Response {
    name_caller(&request, &caller.name);
    caller.request = request.extensions().get::<Arc<RequestEntry>>().cloned();
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
        .filter(|(name, _)| name != "key" && name != "upload_id")
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
    state: &GatewayState,
    mut request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if request.uri().path() == "/health" {
        return next(request).await;
    }
    let entry = Arc::new(RequestEntry {
        method: request.method().to_string(),
        path: recorded_path(request.uri()),
        caller: OnceLock::new(),
        label: OnceLock::new(),
        handed_over: AtomicBool::new(false),
    });
    request.extensions_mut().insert(entry.clone());
    let started = std::time::Instant::now();
    let response = next(request).await;
    if entry.handed_over.load(Ordering::Relaxed)
        && response.extensions().get::<CallNotRecorded>().is_none()
    {
        return response;
    }
    state.logs.push(LogRecord::Request(pb::RequestRecord {
        at_ms: now_ms(),
        kind: pb::RecordKind::Client.into(),
        method: entry.method.clone(),
        model: model_of(&entry.path),
        path: entry.path.clone(),
        status_code: u32::from(response.status().as_u16()),
        latency_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        client: entry.caller.get().cloned().unwrap_or_default(),
        label: entry.label.get().cloned().unwrap_or_default(),
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
