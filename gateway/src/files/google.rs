//! Google's Files API over the gateway's files, as `google-genai`'s `client.files` speaks it:
//! `files.list/get/delete` under `/v1beta/files` here, the uploads in `google_upload.rs`. A
//! file is `files/file-<id>`; its `uri` points back at the gateway, and a request that
//! references it runs on a key that holds a copy at Google (the chat service makes one when
//! needed).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use gb_proto::files::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{files_caller, http_status};
use crate::auth::Caller;
use crate::errors::google_error;
use crate::state::GatewayState;

/// `/v1beta/files…`, behind the client-token check.
pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/files", get(list))
        .route("/files/{name}", get(retrieve).delete(remove))
}

pub(crate) fn from_status(status: &tonic::Status) -> Response {
    google_error(http_status(status), status.message())
}

/// `file-7`, `files/file-7` → 7.
fn name_id(name: &str) -> Option<i64> {
    super::seed::file_id(name.strip_prefix("files/").unwrap_or(name))
}

/// Where the client reached the gateway: its scheme and host, for the URLs it is given.
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(axum::http::header::HOST))
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|scheme| matches!(*scheme, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Google's File resource for a gateway file.
pub(crate) fn file_resource(file: &pb::File, origin: &str) -> Value {
    let time = gb_runtime::time::rfc3339_ms(file.upload_time_ms);
    let expires = gb_runtime::time::rfc3339_ms(file.upload_time_ms + 48 * 3600 * 1000);
    let digest: Vec<u8> = (0..file.sha256.len() / 2)
        .filter_map(|at| u8::from_str_radix(file.sha256.get(at * 2..at * 2 + 2)?, 16).ok())
        .collect();
    let display = if file.display_name.is_empty() {
        &file.filename
    } else {
        &file.display_name
    };
    json!({
        "name": format!("files/file-{}", file.id),
        "displayName": display,
        "mimeType": file.filetype,
        "sizeBytes": file.filesize.to_string(),
        "createTime": time,
        "updateTime": time,
        // Google's own copies live 48 hours; the gateway keeps the file until it is deleted,
        // and makes new copies as needed. This is when a client that caches it should ask again.
        "expirationTime": expires,
        "sha256Hash": base64::engine::general_purpose::STANDARD.encode(digest),
        "uri": format!("{origin}/v1beta/files/file-{}", file.id),
        "state": "ACTIVE",
        "source": "UPLOADED",
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page_size: Option<String>,
    page_token: Option<String>,
}

/// `GET /v1beta/files`: the caller's files, newest first, 10 a page by default (at most 100),
/// `nextPageToken` while there are more.
pub(crate) async fn list(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let size = match query.page_size.as_deref().map(str::parse::<u32>) {
        None => 10,
        Some(Ok(size)) => size.clamp(1, 100),
        Some(Err(_)) => return google_error(400, "pageSize must be a number"),
    };
    let offset = match query
        .page_token
        .as_deref()
        .filter(|token| !token.is_empty())
    {
        None => 0,
        Some(token) => match token.parse::<u32>() {
            Ok(offset) => offset,
            Err(_) => return google_error(400, "pageToken is not one this gateway gave"),
        },
    };
    let request = pb::ListFilesRequest {
        caller: Some(files_caller(&state, &caller)),
        limit: size,
        offset,
        ..pb::ListFilesRequest::default()
    };
    let answer = match state.files.clone().list_files(request).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return from_status(&status),
    };
    let origin = origin(&headers);
    let next = u64::from(offset) + answer.files.len() as u64;
    let mut body = json!({
        "files": answer.files.iter().map(|file| file_resource(file, &origin)).collect::<Vec<_>>(),
    });
    if next < answer.total {
        body["nextPageToken"] = json!(next.to_string());
    }
    Json(body).into_response()
}

fn not_found(name: &str) -> Response {
    google_error(
        403,
        &format!("You do not have permission to access the File {name} or it may not exist."),
    )
}

pub(crate) async fn retrieve(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = name_id(&name) else {
        return not_found(&name);
    };
    let request = pb::GetFileRequest {
        caller: Some(files_caller(&state, &caller)),
        id,
    };
    match state.files.clone().get_file(request).await {
        Ok(file) => Json(file_resource(&file.into_inner(), &origin(&headers))).into_response(),
        Err(status) if status.code() == tonic::Code::NotFound => not_found(&name),
        Err(status) => from_status(&status),
    }
}

pub(crate) async fn remove(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let Some(id) = name_id(&name) else {
        return not_found(&name);
    };
    match super::seed::delete_file(&state, &caller, id).await {
        Ok(_) => Json(json!({})).into_response(),
        Err(status) if status.code() == tonic::Code::NotFound => not_found(&name),
        Err(status) => from_status(&status),
    }
}
