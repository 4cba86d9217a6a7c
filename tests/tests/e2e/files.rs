//! The files service (issue 11) through its three views, against the real services: the
//! design's `/files`, OpenAI's `/v1/files`, Google's Files API (resumable, multipart, raw
//! uploads; list, get, delete); ownership between client tokens; the size limit; ranges; and
//! nothing left in the store by a refused or deleted file.

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::Digest;

use crate::harness::{ADMIN_TOKEN, Backend, CLIENT_TOKEN, Mode, TestApp, status_and_json};
use crate::{each_setup, two_setups};

pub const OTHER_TOKEN: &str = "sk-other-client-for-tests";

pub async fn spawn(mode: Mode, backend: Backend) -> TestApp {
    TestApp::builder(mode, backend)
        .setting(
            "ALLOWED_TOKENS",
            &format!("[\"{CLIENT_TOKEN}\",\"{OTHER_TOKEN}\"]"),
        )
        .spawn()
        .await
}

/// Content that is not the same byte over and over: `size` bytes of a counter.
pub fn content(size: usize) -> Vec<u8> {
    (0..size).map(|at| (at * 31 % 251) as u8).collect()
}

fn hex_sha(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// How many objects the store holds (files and session parts).
pub fn stored_objects(app: &TestApp) -> usize {
    fn count(path: &std::path::Path) -> usize {
        std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    if path.is_dir() { count(&path) } else { 1 }
                })
                .sum()
        })
    }
    count(&app.db.files_dir)
}

pub async fn seed_upload(
    app: &TestApp,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    mime: &str,
) -> (u16, Value) {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    let response = app
        .http
        .post(app.url("/files"))
        .header("x-goog-api-key", token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn seed_files_keep_and_serve_files(mode: Mode, backend: Backend) {
    let app = spawn(mode, backend).await;
    let bytes = content(3 * 1024 * 1024 + 17);
    let (status, file) = seed_upload(
        &app,
        CLIENT_TOKEN,
        "报告 \"Q3\".pdf",
        bytes.clone(),
        "application/pdf",
    )
    .await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["filename"], "报告 \"Q3\".pdf");
    assert_eq!(file["filesize"], bytes.len());
    assert_eq!(file["filetype"], "application/pdf");
    assert_eq!(file["sha256"], hex_sha(&bytes));
    assert!(
        file["upload_time"].as_str().unwrap().ends_with('Z'),
        "{file}"
    );
    let id = file["id"].as_i64().unwrap();
    assert_eq!(stored_objects(&app), 1);

    // The type guessed from the name when the part has none.
    let (status, text) = seed_upload(
        &app,
        CLIENT_TOKEN,
        "notes.txt",
        b"hello".to_vec(),
        "application/octet-stream",
    )
    .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(text["filetype"], "text/plain");

    // Listed newest first, with paging.
    let (status, listed) = status_and_json(get(&app, CLIENT_TOKEN, "/files").await).await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<i64> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![text["id"].as_i64().unwrap(), id]);
    let (_, page) = status_and_json(get(&app, CLIENT_TOKEN, "/files?limit=1&offset=1").await).await;
    assert_eq!(page["files"][0]["id"], id, "{page}");
    assert_eq!(page["total"], 2, "{page}");

    // The bytes, with their headers; a range.
    let answer = get(&app, CLIENT_TOKEN, &format!("/files/{id}")).await;
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["etag"], format!("\"{}\"", hex_sha(&bytes)).as_str());
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        disposition.contains("filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%22Q3%22%2Epdf"),
        "{disposition}"
    );
    assert_eq!(answer.bytes().await.unwrap().to_vec(), bytes);
    let ranged = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 1000-1999/{}", bytes.len()).as_str()
    );
    assert_eq!(
        ranged.bytes().await.unwrap().to_vec(),
        bytes[1000..2000].to_vec()
    );
    let past = app
        .http
        .get(app.url(&format!("/files/{id}")))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );

    // Another client token neither sees nor reaches it; the admin token sees every file.
    let (status, other) = status_and_json(get(&app, OTHER_TOKEN, "/files").await).await;
    assert_eq!(
        (status, other["files"].as_array().unwrap().len()),
        (200, 0),
        "{other}"
    );
    let (status, body) =
        status_and_json(get(&app, OTHER_TOKEN, &format!("/files/{id}")).await).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    let answer = app
        .http
        .delete(app.url(&format!("/files/{id}")))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let (_, all) = status_and_json(get(&app, ADMIN_TOKEN, "/files").await).await;
    assert_eq!(all["files"].as_array().unwrap().len(), 2, "{all}");
    // The admin token may delete any file.
    let (status, body) = app
        .admin_send(
            reqwest::Method::DELETE,
            &format!("/files/{}", text["id"]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        status_and_json(get(&app, CLIENT_TOKEN, &format!("/files/{}", text["id"])).await).await;
    assert_eq!(status, 404);

    // Bad input, each with its status, in Google's JSON shape.
    let not_multipart = app
        .http
        .post(app.url("/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(not_multipart).await;
    assert_eq!(status, 415, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multipart"),
        "{body}"
    );
    let no_file_part = app
        .http
        .post(app.url("/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(no_file_part).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"file\""),
        "{body}"
    );
    let (status, body) = status_and_json(get(&app, CLIENT_TOKEN, "/files/abc").await).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = status_and_json(get(&app, CLIENT_TOKEN, "/files/99999").await).await;
    assert_eq!(status, 404);
    let unauthenticated = app.http.get(app.url("/files")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // Deleted: the row and the content.
    let answer = app
        .http
        .delete(app.url(&format!("/files/{id}")))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(answer).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("deleted"),
        "{body}"
    );
    assert_eq!(
        get(&app, CLIENT_TOKEN, &format!("/files/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(stored_objects(&app), 0, "no content left");

    // The uploads and downloads are in the request log (written in batches).
    let download = format!("GET /files/{id} 200");
    app.eventually("the file requests are logged", || async {
        let rows = app
            .db
            .texts("SELECT request_method || ' ' || request_path || ' ' || CAST(status_code AS TEXT) AS text FROM request_logs")
            .await;
        rows.iter().any(|row| row == "POST /files 201") && rows.contains(&download)
    })
    .await;
    app.stop().await;
}

each_setup!(seed_files, seed_files_keep_and_serve_files);

async fn without_isolation_every_client_sees_every_file(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting(
            "ALLOWED_TOKENS",
            &format!("[\"{CLIENT_TOKEN}\",\"{OTHER_TOKEN}\"]"),
        )
        .setting("FILES_USER_ISOLATION_ENABLED", "false")
        .spawn()
        .await;
    let (_, file) = seed_upload(
        &app,
        CLIENT_TOKEN,
        "shared.txt",
        b"shared".to_vec(),
        "text/plain",
    )
    .await;
    let (_, listed) = status_and_json(get(&app, OTHER_TOKEN, "/files").await).await;
    assert_eq!(listed["files"][0]["id"], file["id"], "{listed}");
    let answer = get(&app, OTHER_TOKEN, &format!("/files/{}", file["id"])).await;
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"shared");
    app.stop().await;
}

two_setups!(
    isolation_off,
    without_isolation_every_client_sees_every_file
);

async fn a_file_over_the_limit_is_refused_and_nothing_is_kept(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("FILES_MAX_SIZE_MB", "1")
        .spawn()
        .await;
    // Declared too large: refused from the header.
    let (status, body) = seed_upload(
        &app,
        CLIENT_TOKEN,
        "big.bin",
        content(2 * 1024 * 1024),
        "application/octet-stream",
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED", "{body}");
    // Streamed without a length (chunked): refused when the bytes pass the limit.
    let chunks = futures::stream::iter(
        content(2 * 1024 * 1024)
            .chunks(64 * 1024)
            .map(|chunk| Ok::<_, std::io::Error>(chunk.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = app
        .http
        .post(app.url("/upload/v1beta/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("x-goog-upload-protocol", "raw")
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(stored_objects(&app), 0, "nothing kept");
    let (_, listed) = status_and_json(get(&app, CLIENT_TOKEN, "/files").await).await;
    assert_eq!(listed["files"].as_array().unwrap().len(), 0, "{listed}");
    app.stop().await;
}

two_setups!(
    size_limit,
    a_file_over_the_limit_is_refused_and_nothing_is_kept
);

async fn openai_files_api_serves_the_same_files(mode: Mode, backend: Backend) {
    let app = spawn(mode, backend).await;
    let (_, seeded) = seed_upload(
        &app,
        CLIENT_TOKEN,
        "a.txt",
        b"from the seed route".to_vec(),
        "text/plain",
    )
    .await;
    let form = Form::new().text("purpose", "assistants").part(
        "file",
        Part::bytes(b"{\"a\": 1}\n".to_vec()).file_name("data.jsonl"),
    );
    let response = app
        .http
        .post(app.url("/v1/files"))
        .bearer_auth(CLIENT_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, created) = status_and_json(response).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["object"], "file");
    assert_eq!(created["purpose"], "assistants");
    assert_eq!(created["bytes"], 9);
    assert_eq!(created["filename"], "data.jsonl");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("file-"), "{created}");

    // One listing holds both, newest first; `purpose` filters.
    let (_, listed) = status_and_json(get(&app, CLIENT_TOKEN, "/v1/files").await).await;
    assert_eq!(listed["object"], "list");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![id.clone(), format!("file-{}", seeded["id"])],
        "{listed}"
    );
    let (_, assistants) =
        status_and_json(get(&app, CLIENT_TOKEN, "/v1/files?purpose=assistants").await).await;
    assert_eq!(
        assistants["data"].as_array().unwrap().len(),
        1,
        "{assistants}"
    );
    let (_, paged) =
        status_and_json(get(&app, CLIENT_TOKEN, &format!("/v1/files?limit=1&after={id}")).await)
            .await;
    assert_eq!(
        paged["data"][0]["id"],
        format!("file-{}", seeded["id"]),
        "{paged}"
    );
    assert_eq!(paged["has_more"], false, "{paged}");

    let (status, retrieved) =
        status_and_json(get(&app, CLIENT_TOKEN, &format!("/v1/files/{id}")).await).await;
    assert_eq!((status, &retrieved["id"]), (200, &json!(id)));
    let content = get(&app, CLIENT_TOKEN, &format!("/v1/files/{id}/content")).await;
    assert_eq!(content.bytes().await.unwrap().as_ref(), b"{\"a\": 1}\n");

    // OpenAI's errors: another token's file and an unknown one are 404 `No such File object`.
    let (status, body) =
        status_and_json(get(&app, OTHER_TOKEN, &format!("/v1/files/{id}")).await).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No such File object"),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    let no_purpose = app
        .http
        .post(app.url("/v1/files"))
        .bearer_auth(CLIENT_TOKEN)
        .multipart(Form::new().part("file", Part::bytes(b"x".to_vec()).file_name("x.txt")))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(no_purpose).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "purpose", "{body}");

    let response = app
        .http
        .delete(app.url(&format!("/v1/files/{id}")))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, deleted) = status_and_json(response).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted,
        json!({"id": id, "object": "file", "deleted": true})
    );
    let (_, listed) = status_and_json(get(&app, CLIENT_TOKEN, "/v1/files").await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        stored_objects(&app),
        1,
        "the deleted file's content is gone, nothing of the refused one kept"
    );
    app.stop().await;
}

two_setups!(openai_files, openai_files_api_serves_the_same_files);
