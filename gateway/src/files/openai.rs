//! OpenAI's Files API over the same files (ids `file-<id>`): upload (`file`, `purpose`),
//! list, retrieve, content, delete, in OpenAI's shapes and errors.

use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use gb_proto::files::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::seed::{delete_file, file_id, upload_multipart};
use super::{DownloadError, files_caller, http_status};
use crate::auth::Caller;
use crate::errors::{openai_error, openai_error_with_param};
use crate::state::GatewayState;

/// Under `/v1`, where recent `google-genai` SDKs send Google's Files API calls too: a request
/// with a Gemini-family key (`x-goog-api-key`, `key=`) gets Google's Files API.
pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/files", get(list_any_family).post(create))
        .route(
            "/files/{id}",
            get(retrieve_any_family).delete(remove_any_family),
        )
        .route("/files/{id}/content", get(content))
}

async fn list_any_family(
    state: State<GatewayState>,
    caller: Extension<Caller>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if crate::router::gemini_family(&headers, uri.query()) {
        return match Query::try_from_uri(&uri) {
            Ok(query) => super::google::list(state, caller, query, headers).await,
            Err(rejection) => crate::errors::google_error(400, &rejection.body_text()),
        };
    }
    match Query::try_from_uri(&uri) {
        Ok(query) => list(state, caller, query).await,
        Err(rejection) => openai_error(400, &rejection.body_text()),
    }
}

async fn retrieve_any_family(
    state: State<GatewayState>,
    caller: Extension<Caller>,
    path: Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if crate::router::gemini_family(&headers, uri.query()) {
        return super::google::retrieve(state, caller, path, headers).await;
    }
    retrieve(state, caller, path).await
}

async fn remove_any_family(
    state: State<GatewayState>,
    caller: Extension<Caller>,
    path: Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if crate::router::gemini_family(&headers, uri.query()) {
        return super::google::remove(state, caller, path).await;
    }
    remove(state, caller, path).await
}

/// OpenAI's file object.
pub(crate) fn file_object(file: &pb::File) -> Value {
    json!({
        "id": format!("file-{}", file.id),
        "object": "file",
        "bytes": file.filesize,
        "created_at": file.upload_time_ms / 1000,
        "filename": file.filename,
        "purpose": if file.purpose.is_empty() { "user_data" } else { file.purpose.as_str() },
        "status": "processed",
        "expires_at": Value::Null,
        "status_details": Value::Null,
    })
}

fn from_status(status: &tonic::Status) -> Response {
    openai_error(http_status(status), status.message())
}

fn no_such_file(raw: &str) -> Response {
    openai_error_with_param(404, &format!("No such File object: {raw}"), Some("id"))
}

/// `POST /v1/files`: the `purpose` field must come before the `file` part (every OpenAI SDK
/// sends it so; the file's bytes are stored as they arrive).
async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let caller = files_caller(&state, &caller);
    let (file, fields) = match upload_multipart(&state, caller.clone(), request, openai_error).await
    {
        Ok(uploaded) => uploaded,
        Err(answer) => return answer,
    };
    if fields
        .get("purpose")
        .is_none_or(|purpose| purpose.trim().is_empty())
    {
        // Nothing is kept for a request that is refused.
        let _ = state
            .files
            .clone()
            .delete_file(pb::DeleteFileRequest {
                caller: Some(caller),
                id: file.id,
            })
            .await;
        return openai_error_with_param(
            400,
            "Missing required parameter: 'purpose' (send it before the 'file' part)",
            Some("purpose"),
        );
    }
    Json(file_object(&file)).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    purpose: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    order: Option<String>,
}

/// `GET /v1/files`: newest first, `limit` (default 10,000, as OpenAI's), `after`, `purpose`.
async fn list(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = match query.limit.as_deref().map(str::parse::<u32>) {
        None => 10_000,
        Some(Ok(limit)) if (1..=10_000).contains(&limit) => limit,
        Some(_) => {
            return openai_error_with_param(400, "limit must be from 1 to 10000", Some("limit"));
        }
    };
    if query.order.as_deref().is_some_and(|order| order != "desc") {
        return openai_error_with_param(
            400,
            "only order=desc (newest first) is supported",
            Some("order"),
        );
    }
    let before_id = match query.after.as_deref() {
        None => None,
        Some(after) => match file_id(after) {
            Some(id) => Some(id),
            None => {
                return openai_error_with_param(
                    400,
                    &format!("{after:?} is not a file id"),
                    Some("after"),
                );
            }
        },
    };
    // One more than asked tells whether there are more.
    let request = pb::ListFilesRequest {
        caller: Some(files_caller(&state, &caller)),
        limit: (limit + 1).min(1000),
        offset: 0,
        before_id,
        purpose: query.purpose.unwrap_or_default(),
    };
    let mut files = match state.files.clone().list_files(request).await {
        Ok(answer) => answer.into_inner().files,
        Err(status) => return from_status(&status),
    };
    let asked = (limit as usize).min(999);
    let has_more = files.len() > asked;
    files.truncate(asked);
    let data: Vec<Value> = files.iter().map(file_object).collect();
    Json(json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|file| file["id"].clone()),
        "last_id": data.last().map(|file| file["id"].clone()),
        "has_more": has_more,
    }))
    .into_response()
}

async fn retrieve(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Response {
    let Some(id) = file_id(&raw) else {
        return no_such_file(&raw);
    };
    let request = pb::GetFileRequest {
        caller: Some(files_caller(&state, &caller)),
        id,
    };
    match state.files.clone().get_file(request).await {
        Ok(file) => Json(file_object(&file.into_inner())).into_response(),
        Err(status) if status.code() == tonic::Code::NotFound => no_such_file(&raw),
        Err(status) => from_status(&status),
    }
}

async fn content(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = file_id(&raw) else {
        return no_such_file(&raw);
    };
    let caller = files_caller(&state, &caller);
    match super::download(&state, caller, id, super::parse_range(&headers)).await {
        Ok(response) => response,
        Err(DownloadError::Status(status)) if status.code() == tonic::Code::NotFound => {
            no_such_file(&raw)
        }
        Err(DownloadError::Status(status)) => from_status(&status),
        Err(DownloadError::Unsatisfiable(size)) => super::unsatisfiable(
            openai_error(
                416,
                &format!("the range is outside the file's {size} bytes"),
            ),
            size,
        ),
    }
}

async fn remove(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Response {
    let Some(id) = file_id(&raw) else {
        return no_such_file(&raw);
    };
    match delete_file(&state, &caller, id).await {
        Ok(file) => {
            Json(json!({"id": format!("file-{}", file.id), "object": "file", "deleted": true}))
                .into_response()
        }
        Err(status) if status.code() == tonic::Code::NotFound => no_such_file(&raw),
        Err(status) => from_status(&status),
    }
}
