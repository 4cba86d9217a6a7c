//! The original design's `/files`: upload (multipart, one part named `file`), list, download
//! (with ranges), delete. Errors in Google's JSON shape, like the design's other routes.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gb_proto::files::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DownloadError, files_caller};
use crate::auth::Caller;
use crate::errors::google_error;
use crate::state::GatewayState;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/files", get(list).post(create))
        .route("/files/{id}", get(fetch).delete(remove))
}

/// The design's fields, and the SHA-256.
pub(crate) fn seed_json(file: &pb::File) -> Value {
    json!({
        "id": file.id,
        "filename": file.filename,
        "filesize": file.filesize,
        "filetype": file.filetype,
        "upload_time": gb_runtime::time::rfc3339_ms(file.upload_time_ms),
        "sha256": file.sha256,
    })
}

/// A path id: a number (`7`) or OpenAI's form (`file-7`).
pub(crate) fn file_id(raw: &str) -> Option<i64> {
    raw.strip_prefix("file-")
        .unwrap_or(raw)
        .parse()
        .ok()
        .filter(|id| *id > 0)
}

/// The `file` part of a multipart body, streamed to the files service, with the text fields
/// sent before it (a `purpose` among them is the file's). `Err` is the answer (in `error`'s
/// shape).
pub(crate) async fn upload_multipart(
    state: &GatewayState,
    caller: pb::Caller,
    request: Request,
    error: fn(u16, &str) -> Response,
) -> Result<(pb::File, HashMap<String, String>), Response> {
    if let Some(message) = super::declared_too_large(state, request.headers()) {
        crate::body::drain(&state.body_limits, request.into_body());
        return Err(error(413, &message));
    }
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(error(
            415,
            "the body must be multipart/form-data with a part named \"file\"",
        ));
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| error(400, &rejection.body_text()))?;
    let mut fields = HashMap::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Err(error(400, "no part named \"file\" in the multipart body")),
            Err(problem) => return Err(error(400, &format!("the multipart body: {problem}"))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            match field.text().await {
                Ok(text) if text.len() <= 4096 && fields.len() < 32 => {
                    fields.insert(name, text);
                }
                Ok(_) => return Err(error(400, &format!("the field {name:?} is too long"))),
                Err(problem) => return Err(error(400, &format!("the field {name:?}: {problem}"))),
            }
            continue;
        }
        let start = pb::UploadStart {
            caller: Some(caller),
            filename: field.file_name().unwrap_or_default().to_owned(),
            filetype: field.content_type().unwrap_or_default().to_owned(),
            purpose: fields.get("purpose").cloned().unwrap_or_default(),
            ..pb::UploadStart::default()
        };
        return match super::upload(state, start, field).await {
            Ok(file) => Ok((file, fields)),
            Err(problem) => {
                let (status, message) = problem.http();
                Err(error(status, &message))
            }
        };
    }
}

/// `POST /files` → 201 with the file.
async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let caller = files_caller(&state, &caller);
    match upload_multipart(&state, caller, request, google_error).await {
        Ok((file, _)) => (axum::http::StatusCode::CREATED, Json(seed_json(&file))).into_response(),
        Err(answer) => answer,
    }
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<String>,
    offset: Option<String>,
}

#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
fn number(raw: Option<&str>, name: &str, max: u32) -> Result<u32, Response> {
    match raw {
        None => Ok(0),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|value| *value <= max)
            .ok_or_else(|| google_error(400, &format!("{name} must be a number from 0 to {max}"))),
    }
}

/// `GET /files` → `{"files": [...], "total"}`, newest first.
async fn list(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Query(paging): Query<Paging>,
) -> Response {
    let (limit, offset) = match (
        number(paging.limit.as_deref(), "limit", 1000),
        number(paging.offset.as_deref(), "offset", u32::MAX),
    ) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let request = pb::ListFilesRequest {
        caller: Some(files_caller(&state, &caller)),
        limit,
        offset,
        ..pb::ListFilesRequest::default()
    };
    match state.files.clone().list_files(request).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            Json(json!({
                "files": answer.files.iter().map(seed_json).collect::<Vec<_>>(),
                "total": answer.total,
            }))
            .into_response()
        }
        Err(status) => google_error(super::http_status(&status), status.message()),
    }
}

fn bad_id(raw: &str) -> Response {
    google_error(
        400,
        &format!("{raw:?} is not a file id (a positive number)"),
    )
}

/// `GET /files/{id}` → the bytes (206 for a `Range`).
async fn fetch(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = file_id(&raw) else {
        return bad_id(&raw);
    };
    let caller = files_caller(&state, &caller);
    match super::download(&state, caller, id, super::parse_range(&headers)).await {
        Ok(response) => response,
        Err(DownloadError::Status(status)) => {
            google_error(super::http_status(&status), status.message())
        }
        Err(DownloadError::Unsatisfiable(size)) => super::unsatisfiable(
            google_error(
                416,
                &format!("the range is outside the file's {size} bytes"),
            ),
            size,
        ),
    }
}

/// `DELETE /files/{id}`: the row, the content, and every upstream copy at Google.
async fn remove(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Response {
    let Some(id) = file_id(&raw) else {
        return bad_id(&raw);
    };
    match delete_file(&state, &caller, id).await {
        Ok(file) => Json(json!({"message": format!("file {} deleted", file.id), "id": file.id}))
            .into_response(),
        Err(status) => google_error(super::http_status(&status), status.message()),
    }
}

/// Deletes a file the caller may see, then its copies at Google (through the chat service,
/// which holds the keys; a copy it cannot delete expires there within 48 hours).
pub(crate) async fn delete_file(
    state: &GatewayState,
    caller: &Caller,
    id: i64,
) -> Result<pb::File, tonic::Status> {
    let request = pb::DeleteFileRequest {
        caller: Some(files_caller(state, caller)),
        id,
    };
    let file = state
        .files
        .clone()
        .delete_file(request)
        .await?
        .into_inner()
        .file
        .unwrap_or_default();
    if !file.copies.is_empty() {
        let copies = file
            .copies
            .iter()
            .map(|copy| gb_proto::chat::v1::UpstreamFile {
                key_id: copy.key_id,
                name: copy.name.clone(),
            })
            .collect();
        let chat = state.chat.clone();
        // Not the request's call context: this call does not answer the request (the gateway
        // writes its row).
        let context = gb_proto::chat::v1::CallContext {
            caller: caller.name.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        state.tasks.spawn(async move {
            let request = gb_proto::chat::v1::DeleteUpstreamFilesRequest {
                context: Some(context),
                copies,
            };
            if let Err(status) = chat.delete_upstream_files(tonic::Request::new(request)).await {
                tracing::warn!(error = %status.message(), "upstream copies of a deleted file were not deleted");
            }
        });
    }
    Ok(file)
}
