//! `/console/files`: every client's files (the console is the admin caller), newest first, in
//! pages; `files.js` uploads with progress through `POST /files` and deletes through `DELETE
//! /files/{id}`, which accept the console's session (`guards.rs::require_client_or_console`);
//! a download is a plain link to `/files/{id}`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use gb_proto::files::v1 as pb;
use serde::Deserialize;

use super::{Chrome, failure, render, when};
use crate::state::GatewayState;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Paging {
    page: String,
}

pub struct FileRow {
    pub id: i64,
    pub name: String,
    pub mime: String,
    pub size: String,
    pub created: String,
    pub owner: String,
    pub purpose: String,
    pub copies: usize,
}

#[derive(Template)]
#[template(path = "console/files.html")]
struct FilesPage {
    chrome: Chrome,
    files: Vec<FileRow>,
    page: u32,
    pages: u32,
    total: u64,
    max_size_mb: u32,
}

const PER_PAGE: u32 = 50;

/// A size in the largest unit that keeps it above 1.
pub fn size_text(bytes: i64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if size < 1024.0 || unit == "GB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    format!("{bytes} B")
}

pub async fn page(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: Uri,
    Query(paging): Query<Paging>,
) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "files") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    let page: u32 = paging.page.parse().unwrap_or(1).max(1);
    let request = pb::ListFilesRequest {
        caller: Some(pb::Caller {
            name: state.auth.get().admin_name().to_owned(),
            admin: true,
        }),
        limit: PER_PAGE,
        offset: (page - 1) * PER_PAGE,
        ..pb::ListFilesRequest::default()
    };
    let answer = match state.files.clone().list_files(request).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failure(&chrome, &status),
    };
    let pages = u32::try_from(answer.total.div_ceil(u64::from(PER_PAGE)))
        .unwrap_or(u32::MAX)
        .max(1);
    render(&FilesPage {
        chrome,
        files: answer
            .files
            .into_iter()
            .map(|file| FileRow {
                id: file.id,
                name: file.filename,
                mime: file.filetype,
                size: size_text(file.filesize),
                created: when(file.upload_time_ms),
                owner: file.owner,
                purpose: file.purpose,
                copies: file.copies.len(),
            })
            .collect(),
        page,
        pages,
        total: answer.total,
        max_size_mb: state.settings.current().files.files_max_size_mb,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(super::size_text(512), "512 B");
        assert_eq!(super::size_text(1536), "1.5 KB");
        assert_eq!(super::size_text(3 * 1024 * 1024), "3.0 MB");
    }
}
