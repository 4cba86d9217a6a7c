//! Google's upload endpoint over the gateway's files: resumable uploads (start, upload,
//! finalize, query, cancel, offsets checked), multipart and raw.
//!
//! The upload URL a start answers is a capability, as Google's is: the SDKs send no key with
//! the chunks, so the session id (128 random bits) is what authorizes them; the session is
//! kept by the files service, so any gateway replica continues it.

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use futures::StreamExt;
use gb_proto::files::v1 as pb;
use serde_json::{Value, json};

use super::files_caller;
use super::google::{file_resource, from_status, origin};
use crate::auth::Caller;
use crate::errors::google_error;
use crate::state::GatewayState;

/// `/upload/v1beta/files` (and `/upload/v1/files`, where recent SDKs go): a start or a one-shot upload needs a client token; a session's
/// chunks carry its `upload_id` instead (`router.rs` checks which).
pub fn upload_routes() -> Router<GatewayState> {
    Router::new().route("/files", post(upload).put(upload))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// The `upload_id` of a session's request.
pub(crate) fn upload_id(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "upload_id")
        .map(|(_, value)| value.into_owned())
}

/// An answer with `X-Goog-Upload-Status` (and the bytes received, for a query).
fn session_answer(status: &str, session: &pb::UploadSession, origin: &str) -> Response {
    let mut response = match &session.file {
        Some(file) => Json(json!({"file": file_resource(file, origin)})).into_response(),
        None => StatusCode::OK.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        "x-goog-upload-status",
        HeaderValue::from_str(status).unwrap_or(HeaderValue::from_static("active")),
    );
    if let Ok(received) = HeaderValue::from_str(&session.received.to_string()) {
        headers.insert("x-goog-upload-size-received", received);
    }
    response
}

/// The upload routes: a session's command, or a new upload.
async fn upload(
    State(state): State<GatewayState>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
    request: Request,
) -> Response {
    let origin = origin(request.headers());
    if let Some(session) = upload_id(query.as_deref()) {
        return continue_session(&state, session, request, &origin).await;
    }
    let Some(Extension(caller)) = caller else {
        return google_error(
            401,
            "API key not valid: pass a client token as x-goog-api-key or key=",
        );
    };
    if let Some(message) = super::declared_too_large(&state, request.headers()) {
        crate::body::drain(&state.body_limits, request.into_body());
        return google_error(413, &message);
    }
    let caller = files_caller(&state, &caller);
    let headers = request.headers().clone();
    let protocol = header(&headers, "x-goog-upload-protocol")
        .unwrap_or("raw")
        .to_ascii_lowercase();
    match protocol.as_str() {
        "resumable" => start_session(&state, caller, request, &origin).await,
        "multipart" => upload_multipart(&state, caller, request, &origin).await,
        "raw" => {
            let start = pb::UploadStart {
                caller: Some(caller),
                filename: header(&headers, "x-goog-upload-file-name")
                    .unwrap_or_default()
                    .to_owned(),
                filetype: header(&headers, "content-type")
                    .unwrap_or_default()
                    .to_owned(),
                ..pb::UploadStart::default()
            };
            stored(
                &state,
                start,
                request.into_body().into_data_stream(),
                &origin,
            )
            .await
        }
        other => google_error(
            400,
            &format!("X-Goog-Upload-Protocol {other:?}: expected resumable, multipart or raw"),
        ),
    }
}

async fn stored(
    state: &GatewayState,
    start: pb::UploadStart,
    body: impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>>,
    origin: &str,
) -> Response {
    match super::upload(state, start, body).await {
        Ok(file) => Json(json!({"file": file_resource(&file, origin)})).into_response(),
        Err(error) => {
            let (status, message) = error.http();
            google_error(status, &message)
        }
    }
}

/// A field of a File's metadata in either of the JSON spellings Google accepts
/// (`displayName`, `display_name`: the Python SDK sends the latter).
fn metadata_text(file: &Value, camel: &str) -> String {
    let snake: String = camel
        .chars()
        .flat_map(|c| {
            let lower = c.to_ascii_lowercase();
            (c.is_ascii_uppercase().then_some('_').into_iter()).chain([lower])
        })
        .collect();
    file.get(camel)
        .or_else(|| file.get(&snake))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The start's small JSON body: `{"file": {"displayName", "mimeType"}}`.
async fn start_metadata(body: Body) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| google_error(400, "the upload's metadata is over 64 KB or did not arrive"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| google_error(400, "the upload's metadata is not a JSON object"))
}

async fn start_session(
    state: &GatewayState,
    caller: pb::Caller,
    request: Request,
    origin: &str,
) -> Response {
    let (parts, body) = request.into_parts();
    if header(&parts.headers, "x-goog-upload-command") != Some("start") {
        return google_error(
            400,
            "a resumable upload begins with X-Goog-Upload-Command: start",
        );
    }
    let declared = match header(&parts.headers, "x-goog-upload-header-content-length")
        .map(str::parse::<i64>)
    {
        Some(Ok(size)) if size >= 0 => Some(size),
        None => None,
        Some(_) => return google_error(400, "X-Goog-Upload-Header-Content-Length is not a size"),
    };
    let metadata = match start_metadata(body).await {
        Ok(metadata) => metadata,
        Err(answer) => return answer,
    };
    let file = metadata.get("file").unwrap_or(&metadata);
    let text = |name: &str| metadata_text(file, name);
    let display_name = text("displayName");
    let filename = header(&parts.headers, "x-goog-upload-file-name")
        .map(str::to_owned)
        .unwrap_or_else(|| display_name.clone());
    let filetype = header(&parts.headers, "x-goog-upload-header-content-type")
        .map(str::to_owned)
        .unwrap_or_else(|| text("mimeType"));
    let start = pb::UploadStart {
        caller: Some(caller),
        filename,
        filetype,
        display_name,
        declared_size: declared,
        ..pb::UploadStart::default()
    };
    let request = pb::StartUploadSessionRequest { start: Some(start) };
    let session = match state.files.clone().start_upload_session(request).await {
        Ok(session) => session.into_inner(),
        Err(status) => return from_status(&status),
    };
    // The path as the client sent it (under `/gemini` or not): the router nests it.
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |uri| uri.path().to_owned());
    let url = format!("{origin}{path}?upload_id={}", session.id);
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert("x-goog-upload-status", HeaderValue::from_static("active"));
    headers.insert(
        "x-goog-upload-chunk-granularity",
        HeaderValue::from_static("8388608"),
    );
    if let Ok(url) = HeaderValue::from_str(&url) {
        headers.insert("x-goog-upload-url", url);
    }
    response
}

/// The session's command: `upload` (with `, finalize`), `finalize`, `query` or `cancel`.
async fn continue_session(
    state: &GatewayState,
    session_id: String,
    request: Request,
    origin: &str,
) -> Response {
    // The session id is the credential (see the module's documentation).
    let caller = pb::Caller {
        name: String::new(),
        admin: true,
    };
    let headers = request.headers().clone();
    let command = header(&headers, "x-goog-upload-command")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let commands: Vec<&str> = command.split(',').map(str::trim).collect();
    let mut files = state.files.clone();
    let lookup = pb::GetUploadSessionRequest {
        caller: Some(caller.clone()),
        session_id: session_id.clone(),
    };
    if commands == ["query"] {
        return match files.get_upload_session(lookup).await {
            Ok(session) => {
                let session = session.into_inner();
                let status = if session.cancelled {
                    "cancelled"
                } else if session.file.is_some() {
                    "final"
                } else {
                    "active"
                };
                session_answer(status, &session, origin)
            }
            Err(status) => from_status(&status),
        };
    }
    if commands == ["cancel"] {
        return match files.cancel_upload_session(lookup).await {
            Ok(session) => session_answer("cancelled", &session.into_inner(), origin),
            Err(status) => from_status(&status),
        };
    }
    let finalize = commands.contains(&"finalize");
    if !(commands.contains(&"upload") || finalize)
        || commands
            .iter()
            .any(|c| !matches!(*c, "upload" | "finalize"))
    {
        return google_error(
            400,
            &format!(
                "X-Goog-Upload-Command {command:?}: expected upload, finalize, query or cancel"
            ),
        );
    }
    let Some(Ok(offset)) = header(&headers, "x-goog-upload-offset").map(str::parse::<i64>) else {
        return google_error(400, "X-Goog-Upload-Offset is required with an upload");
    };
    let chunk = pb::SessionChunk {
        caller: Some(caller),
        session_id,
        offset,
        finalize,
    };
    let message = |part| pb::AppendUploadSessionRequest { part: Some(part) };
    let body = request.into_body().into_data_stream();
    let body = if commands.contains(&"upload") {
        body.left_stream()
    } else {
        futures::stream::empty().right_stream()
    };
    let appended = super::stream_into(
        state,
        message(pb::append_upload_session_request::Part::Chunk(chunk)),
        body,
        |data| pb::AppendUploadSessionRequest {
            part: Some(pb::append_upload_session_request::Part::Data(data)),
        },
        message(pb::append_upload_session_request::Part::End(pb::End {})),
        move |messages| async move { files.append_upload_session(messages).await },
    )
    .await;
    match appended {
        Ok(session) if finalize => session_answer("final", &session, origin),
        Ok(session) => session_answer("active", &session, origin),
        Err(super::UploadError::Status(status))
            if status.code() == tonic::Code::FailedPrecondition =>
        {
            // A wrong offset: the client asks where to resume (`query`).
            let mut answer = google_error(400, status.message());
            answer
                .headers_mut()
                .insert("x-goog-upload-status", HeaderValue::from_static("active"));
            answer
        }
        Err(error) => {
            let (status, message) = error.http();
            google_error(status, &message)
        }
    }
}

/// `X-Goog-Upload-Protocol: multipart`: a `multipart/related` body, the metadata (JSON) first,
/// then the content, which is streamed.
async fn upload_multipart(
    state: &GatewayState,
    caller: pb::Caller,
    request: Request,
    origin: &str,
) -> Response {
    let boundary = header(request.headers(), "content-type").and_then(|value| {
        let (kind, parameters) = value.split_once(';')?;
        kind.trim()
            .to_ascii_lowercase()
            .starts_with("multipart/")
            .then_some(())?;
        parameters.split(';').find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            (name.trim().eq_ignore_ascii_case("boundary"))
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    });
    let Some(boundary) = boundary.filter(|boundary| !boundary.is_empty()) else {
        return google_error(
            400,
            "a multipart upload needs a multipart/related Content-Type with a boundary",
        );
    };
    let mut multipart = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
    let metadata = match multipart.next_field().await {
        Ok(Some(field)) => match field.bytes().await {
            Ok(bytes) if bytes.len() <= 64 * 1024 => {
                serde_json::from_slice::<Value>(&bytes).unwrap_or(json!({}))
            }
            _ => return google_error(400, "the upload's metadata part is over 64 KB or broken"),
        },
        _ => return google_error(400, "the multipart body has no metadata part"),
    };
    let content = match multipart.next_field().await {
        Ok(Some(field)) => field,
        _ => return google_error(400, "the multipart body has no content part"),
    };
    let file = metadata.get("file").unwrap_or(&metadata);
    let text = |name: &str| metadata_text(file, name);
    let start = pb::UploadStart {
        caller: Some(caller),
        filename: text("displayName"),
        filetype: content
            .content_type()
            .map(ToString::to_string)
            .unwrap_or_else(|| text("mimeType")),
        display_name: text("displayName"),
        ..pb::UploadStart::default()
    };
    let body = content.map(|chunk| chunk.map_err(axum::Error::new));
    stored(state, start, body, origin).await
}
