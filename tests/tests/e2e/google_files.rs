//! Google's Files API through the gateway (issue 11, item 5), and files that outlive their key
//! (item 6): a request that references a gateway file runs on a key that holds a copy at the
//! (mock) Google, or the chat service makes one with the key it picked; the owner key cooling
//! down, disabled or removed never fails the request.

use serde_json::{Value, json};

use crate::files::{OTHER_TOKEN, content, spawn, stored_objects};
use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, new_key, status_and_json};
use crate::{microservices_only, two_setups};
use gb_tests::mock_gemini::Behavior;

/// A resumable start: the session's URL.
async fn start_session(app: &TestApp, base: &str, size: usize, mime: &str) -> String {
    let response = app
        .http
        .post(format!("{base}/upload/v1beta/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", size.to_string())
        .header("x-goog-upload-header-content-type", mime)
        .json(&json!({"file": {"displayName": "the report"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-goog-upload-status"], "active");
    response.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A chunk of a session, as the SDKs send it: no key, the offset, the command.
async fn send_chunk(
    app: &TestApp,
    url: &str,
    offset: usize,
    data: &[u8],
    command: &str,
) -> reqwest::Response {
    app.http
        .post(url)
        .header("x-goog-upload-command", command)
        .header("x-goog-upload-offset", offset.to_string())
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

/// A file stored through the resumable protocol in one chunk: its resource.
pub async fn upload_resumable(app: &TestApp, bytes: &[u8], mime: &str) -> Value {
    let url = start_session(app, &app.base_url, bytes.len(), mime).await;
    let answer = send_chunk(app, &url, 0, bytes, "upload, finalize").await;
    assert_eq!(answer.headers()["x-goog-upload-status"], "final");
    let (status, body) = status_and_json(answer).await;
    assert_eq!(status, 200, "{body}");
    body["file"].clone()
}

async fn google_files_api_uploads_lists_gets_and_deletes(mode: Mode, backend: Backend) {
    let app = spawn(mode, backend).await;
    let bytes = content(300_000);
    let url = start_session(&app, &app.base_url, bytes.len(), "application/pdf").await;
    assert!(
        url.starts_with(&app.base_url) && url.contains("upload_id="),
        "{url}"
    );

    // Chunks at their offsets; a wrong offset is refused and the client asks where to resume.
    let answer = send_chunk(&app, &url, 0, &bytes[..100_000], "upload").await;
    assert_eq!(
        (
            answer.status().as_u16(),
            answer.headers()["x-goog-upload-status"].to_str().unwrap()
        ),
        (200, "active")
    );
    let answer = send_chunk(&app, &url, 5, &bytes[100_000..200_000], "upload").await;
    assert_eq!(answer.status(), 400);
    let query = app
        .http
        .post(&url)
        .header("x-goog-upload-command", "query")
        .send()
        .await
        .unwrap();
    assert_eq!(query.headers()["x-goog-upload-size-received"], "100000");
    let answer = send_chunk(&app, &url, 100_000, &bytes[100_000..200_000], "upload").await;
    assert_eq!(answer.status(), 200);
    let answer = send_chunk(&app, &url, 200_000, &bytes[200_000..], "upload, finalize").await;
    assert_eq!(answer.headers()["x-goog-upload-status"], "final");
    let (status, body) = status_and_json(answer).await;
    assert_eq!(status, 200, "{body}");
    let file = &body["file"];
    assert_eq!(file["displayName"], "the report");
    assert_eq!(file["mimeType"], "application/pdf");
    assert_eq!(file["sizeBytes"], "300000");
    assert_eq!(file["state"], "ACTIVE");
    let name = file["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("files/file-"), "{file}");
    assert_eq!(file["uri"], format!("{}/v1beta/{name}", app.base_url));
    // The session's parts are gone: one object, the file.
    assert_eq!(stored_objects(&app), 1);
    let seed = app
        .http
        .get(app.url(&format!(
            "/files/{}",
            name.trim_start_matches("files/file-")
        )))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        seed.bytes().await.unwrap().to_vec(),
        bytes,
        "the same bytes through the design's route"
    );

    // A cancelled session keeps nothing.
    let cancelled = start_session(&app, &app.base_url, 10, "text/plain").await;
    send_chunk(&app, &cancelled, 0, b"01234", "upload").await;
    let answer = app
        .http
        .post(&cancelled)
        .header("x-goog-upload-command", "cancel")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-goog-upload-status"], "cancelled");
    assert_eq!(
        send_chunk(&app, &cancelled, 5, b"56789", "upload, finalize")
            .await
            .status(),
        400
    );
    assert_eq!(stored_objects(&app), 1);

    // Multipart (metadata, then the content) and raw uploads.
    let boundary = "gb-boundary-1";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{\"file\": {{\"displayName\": \"notes\"}}}}\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(b"some notes");
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let answer = app
        .http
        .post(app.url("/gemini/upload/v1beta/files?key=") + CLIENT_TOKEN)
        .header("x-goog-upload-protocol", "multipart")
        .header(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        )
        .body(multipart)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(answer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["file"]["displayName"],
            &body["file"]["mimeType"],
            &body["file"]["sizeBytes"]
        ),
        (&json!("notes"), &json!("text/plain"), &json!("10"))
    );
    let answer = app
        .http
        .post(app.url("/upload/v1beta/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("x-goog-upload-protocol", "raw")
        .header("content-type", "image/png")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    let (status, raw) = status_and_json(answer).await;
    assert_eq!(
        (status, &raw["file"]["mimeType"]),
        (200, &json!("image/png")),
        "{raw}"
    );

    // Listed with Google's paging; got; another client's files are not there.
    let page = |token: &'static str, query: String| {
        let request = app
            .http
            .get(app.url(&format!("/v1beta/files{query}")))
            .header("x-goog-api-key", token);
        async move { status_and_json(request.send().await.unwrap()).await }
    };
    let (status, first) = page(CLIENT_TOKEN, "?pageSize=2".into()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["files"].as_array().unwrap().len(), 2, "{first}");
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = page(CLIENT_TOKEN, format!("?pageSize=2&pageToken={token}")).await;
    assert_eq!(second["files"][0]["name"], name, "{second}");
    assert!(second.get("nextPageToken").is_none(), "{second}");
    let (_, other) = page(OTHER_TOKEN, String::new()).await;
    assert_eq!(other, json!({"files": []}));
    let (status, got) = page(
        CLIENT_TOKEN,
        format!("/{}", name.trim_start_matches("files/")),
    )
    .await;
    assert_eq!((status, &got["name"]), (200, &json!(name)));
    let (status, refused) = page(
        OTHER_TOKEN,
        format!("/{}", name.trim_start_matches("files/")),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["status"], "PERMISSION_DENIED");

    // Deleted; a start without a token is refused.
    let answer = app
        .http
        .delete(app.url(&format!("/v1beta/{name}")))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_json(answer).await, (200, json!({})));
    let (status, _) = page(
        CLIENT_TOKEN,
        format!("/{}", name.trim_start_matches("files/")),
    )
    .await;
    assert_eq!(status, 403);
    let anonymous = app
        .http
        .post(app.url("/upload/v1beta/files"))
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

two_setups!(
    google_files_api,
    google_files_api_uploads_lists_gets_and_deletes
);

/// A session started at one gateway continues and ends at another: the files service keeps it.
async fn a_session_continues_on_another_gateway(mode: Mode, backend: Backend) {
    let mut app = spawn(mode, backend).await;
    let second = app.spawn_second_front().await;
    let bytes = content(50_000);
    let url = start_session(&app, &app.base_url, bytes.len(), "text/plain").await;
    let (_, upload_id) = url.split_once("upload_id=").unwrap();
    send_chunk(&app, &url, 0, &bytes[..20_000], "upload").await;
    let elsewhere = format!("{second}/upload/v1beta/files?upload_id={upload_id}");
    let answer = send_chunk(
        &app,
        &elsewhere,
        20_000,
        &bytes[20_000..],
        "upload, finalize",
    )
    .await;
    let (status, body) = status_and_json(answer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["file"]["sizeBytes"], "50000", "{body}");
    app.stop().await;
}

microservices_only!(
    sessions_across_replicas,
    a_session_continues_on_another_gateway
);

/// Part `index` of the last generation the mock received.
fn last_generation_part(app: &TestApp, index: usize) -> Value {
    let sent = app
        .mock
        .calls()
        .into_iter()
        .rfind(|call| call.path.ends_with(":generateContent"))
        .unwrap();
    sent.body["contents"][0]["parts"][index].clone()
}

async fn generate_with(app: &TestApp, uri: &str) -> (u16, Value) {
    let body = json!({"contents": [{"role": "user", "parts": [
        {"text": "summarize"},
        {"fileData": {"fileUri": uri}}
    ]}]});
    app.gemini_post("/v1beta/models/gemini-2.5-flash:generateContent", &body)
        .await
}

/// The key (by index in `app.keys`) of each copy the mock holds.
fn copy_holders(app: &TestApp) -> Vec<usize> {
    app.mock
        .files()
        .all()
        .iter()
        .map(|file| app.keys.iter().position(|key| *key == file.key).unwrap())
        .collect()
}

/// The generate calls the mock received, by key index, with the file each named.
fn generations(app: &TestApp) -> Vec<(usize, String)> {
    app.mock
        .calls()
        .iter()
        .filter(|call| call.path.ends_with(":generateContent"))
        .map(|call| {
            let key = app.keys.iter().position(|key| *key == call.key).unwrap();
            let uri = call.body["contents"][0]["parts"][1]["fileData"]["fileUri"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (key, uri)
        })
        .collect()
}

async fn a_file_outlives_its_key(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .keys(vec![new_key(), new_key(), new_key(), new_key()])
        .setting("MAX_RETRIES", "4")
        .spawn()
        .await;
    let file = upload_resumable(&app, &content(200_000), "application/pdf").await;
    let uri = file["uri"].as_str().unwrap().to_owned();

    // The first request makes the first copy, with the key it picked; the next runs on it.
    let (status, body) = generate_with(&app, &uri).await;
    assert_eq!(status, 200, "{body}");
    let holders = copy_holders(&app);
    assert_eq!(holders.len(), 1);
    let first = holders[0];
    assert_eq!(generate_with(&app, &uri).await.0, 200);
    let calls = generations(&app);
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|(key, _)| *key == first),
        "the key that holds the copy serves: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|(_, sent)| sent.contains("/v1beta/files/mock")),
        "{calls:?}"
    );
    assert_eq!(copy_holders(&app).len(), 1, "no second copy");

    // The owner key deleted (from the pool, and at Google): another key makes its own copy,
    // the request succeeds.
    app.mock
        .set_behavior(&app.keys[first], Behavior::InvalidKey);
    let id = app.key_states().await[first]["id"].as_i64().unwrap();
    let (status, body) = app
        .admin_send(reqwest::Method::DELETE, &format!("/keys/{id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    app.eventually("the pool has three keys", || async {
        app.admin_get("/keys").await.1["keys"]
            .as_array()
            .is_some_and(|keys| keys.len() == 3)
    })
    .await;
    let (status, body) = generate_with(&app, &uri).await;
    assert_eq!(status, 200, "{body}");
    let second = *generations(&app).last().map(|(key, _)| key).unwrap();
    assert_ne!(second, first);
    assert!(copy_holders(&app).contains(&second));

    // That key cools down (Google's 429): the request goes on to a third key, with its copy.
    app.mock.set_behavior(
        &app.keys[second],
        Behavior::Quota {
            retry_delay_seconds: Some(600.0),
        },
    );
    let (status, body) = generate_with(&app, &uri).await;
    assert_eq!(status, 200, "{body}");
    let third = *generations(&app).last().map(|(key, _)| key).unwrap();
    assert!(third != first && third != second);
    app.wait_for_key(second, |key| key["cooldown_until"].is_string())
        .await;

    // The third key is suspended (disabled at once): the fourth key takes over.
    app.mock.set_behavior(&app.keys[third], Behavior::Suspended);
    let (status, body) = generate_with(&app, &uri).await;
    assert_eq!(status, 200, "{body}");
    let fourth = *generations(&app).last().map(|(key, _)| key).unwrap();
    assert!(![first, second, third].contains(&fourth));
    let mut holders = copy_holders(&app);
    holders.sort_unstable();
    assert_eq!(holders, vec![0, 1, 2, 3], "a copy per key that served");

    // Deleting the file deletes every copy at Google that a key still in the pool can delete
    // (the keys answer again, as after their cooldown).
    app.mock.set_behavior(&app.keys[second], Behavior::Ok);
    app.mock.set_behavior(&app.keys[third], Behavior::Ok);
    let id = file["name"]
        .as_str()
        .unwrap()
        .trim_start_matches("files/")
        .to_owned();
    let answer = app
        .http
        .delete(app.url(&format!("/v1beta/files/{id}")))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    app.eventually("the copies are deleted upstream", || async {
        // The removed key's copy stays (no key to delete it with; it expires in 48 h).
        copy_holders(&app) == vec![first]
    })
    .await;
    app.stop().await;
}

two_setups!(files_outlive_their_key, a_file_outlives_its_key);

async fn references_through_openai_count_tokens_and_expiry(mode: Mode, backend: Backend) {
    let app = spawn(mode, backend).await;
    let file = upload_resumable(&app, &content(10_000), "application/pdf").await;
    let id = file["name"]
        .as_str()
        .unwrap()
        .trim_start_matches("files/")
        .to_owned();

    // OpenAI's `file` part by id.
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .json(
            &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "summarize"},
                {"type": "file", "file": {"file_id": id}}
            ]}]}),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    let part = last_generation_part(&app, 1)["fileData"].clone();
    assert!(
        part["fileUri"]
            .as_str()
            .unwrap()
            .contains("/v1beta/files/mock"),
        "{part}"
    );
    assert_eq!(
        part["mimeType"], "application/pdf",
        "the file's type filled in"
    );

    // The Responses API's `input_file` by id.
    let response = app
        .http
        .post(app.url("/v1/responses"))
        .bearer_auth(CLIENT_TOKEN)
        .json(&json!({"model": "gemini-2.5-flash", "store": false, "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "summarize"},
            {"type": "input_file", "file_id": id}
        ]}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    let part = last_generation_part(&app, 1)["fileData"].clone();
    assert!(
        part["fileUri"]
            .as_str()
            .unwrap()
            .contains("/v1beta/files/mock"),
        "{part}"
    );

    // countTokens and a stream reference it too.
    let body = json!({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": format!("files/{id}")}}]}]});
    let (status, answer) = app
        .gemini_post("/v1beta/models/gemini-2.5-flash:countTokens", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    let stream = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.text().await.unwrap().contains("data: "));
    assert_eq!(app.mock.files().all().len(), 1, "one copy served all four");

    // Another client's reference is Google's 403, without an upstream call.
    let calls = app.mock.calls().len();
    let response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", OTHER_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, refused) = status_and_json(response).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["status"], "PERMISSION_DENIED", "{refused}");
    assert_eq!(app.mock.calls().len(), calls);

    // A copy Google deleted early: the request that meets it forgets it and sends again on
    // the same key with a new copy; the key is not blamed.
    let gone = app.mock.files().all()[0].clone();
    app.mock.files().remove(&gone.name);
    let (status, answer) = app
        .gemini_post("/v1beta/models/gemini-2.5-flash:generateContent", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    let copies = app.mock.files().all();
    assert_eq!(copies.len(), 1, "a new copy");
    assert_ne!(copies[0].name, gone.name);
    let index = app.keys.iter().position(|key| *key == gone.key).unwrap();
    let state = app
        .wait_for_key(index, |key| key["status"] == "active")
        .await;
    assert_eq!(state["failure_count"], 0, "{state}");

    // Copies near their expiry are made again: with Google keeping files 5 minutes, every
    // request finds the copy too close to its end and uploads a fresh one.
    app.mock
        .files()
        .set_lifetime(std::time::Duration::from_secs(300));
    let short_lived = upload_resumable(&app, &content(1000), "text/plain").await;
    let uri = short_lived["uri"].as_str().unwrap().to_owned();
    assert_eq!(generate_with(&app, &uri).await.0, 200);
    assert_eq!(generate_with(&app, &uri).await.0, 200);
    assert_eq!(app.mock.files().all().len(), 3, "one new copy per request");
    app.stop().await;
}

two_setups!(
    file_references,
    references_through_openai_count_tokens_and_expiry
);

async fn a_30_mb_pdf_goes_through_the_files_api(mode: Mode, backend: Backend) {
    let app = spawn(mode, backend).await;
    let pdf = content(30 * 1024 * 1024);
    let data_url = format!(
        "data:application/pdf;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pdf)
    );
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .json(
            &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "summarize"},
                {"type": "file", "file": {"filename": "big.pdf", "file_data": data_url}}
            ]}]}),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{body}");
    // Not inline (Google refuses a request over 20 MB): a copy of 30 MB at the mock, referenced.
    let part = last_generation_part(&app, 1);
    assert!(part.get("inlineData").is_none(), "not inline");
    assert!(
        part["fileData"]["fileUri"]
            .as_str()
            .unwrap()
            .contains("/v1beta/files/mock"),
        "{part}"
    );
    let copies = app.mock.files().all();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].size, pdf.len() as u64);
    assert_eq!(copies[0].mime_type, "application/pdf");
    // Kept as the caller's file, listed with its name.
    let (_, listed) = status_and_json(
        app.http
            .get(app.url("/v1/files"))
            .bearer_auth(CLIENT_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"][0]["filename"], "big.pdf", "{listed}");
    assert_eq!(listed["data"][0]["bytes"], pdf.len(), "{listed}");
    app.stop().await;
}

two_setups!(large_attachments, a_30_mb_pdf_goes_through_the_files_api);

async fn expired_copies_are_forgotten_by_the_cleanup(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        // About every two seconds.
        .setting("FILES_CLEANUP_INTERVAL_HOURS", "0.0005")
        .spawn()
        .await;
    app.mock
        .files()
        .set_lifetime(std::time::Duration::from_secs(1));
    let file = upload_resumable(&app, &content(5000), "text/plain").await;
    let (status, body) = generate_with(&app, file["uri"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let count = "SELECT CAST(COUNT(*) AS TEXT) AS text FROM file_upstream_copies";
    assert_eq!(
        app.db.texts(count).await,
        vec!["1"],
        "the copy is remembered"
    );
    app.eventually_within(
        "the expired copy is forgotten",
        std::time::Duration::from_secs(10),
        || async { app.db.texts(count).await == vec!["0"] },
    )
    .await;

    // A session left unfinished for more than a day goes, with the parts it stored.
    let url = start_session(&app, &app.base_url, 10_000, "text/plain").await;
    assert_eq!(
        send_chunk(&app, &url, 0, &content(4000), "upload")
            .await
            .status(),
        200
    );
    assert_eq!(
        stored_objects(&app),
        2,
        "the file and the session's first part"
    );
    app.db
        .execute("UPDATE file_upload_sessions SET created_at = 0")
        .await;
    let sessions = "SELECT CAST(COUNT(*) AS TEXT) AS text FROM file_upload_sessions";
    app.eventually_within(
        "the old session is dropped",
        std::time::Duration::from_secs(10),
        || async { app.db.texts(sessions).await == vec!["0"] },
    )
    .await;
    assert_eq!(stored_objects(&app), 1, "its part is gone, the file stays");
    app.stop().await;
}

two_setups!(cleanup, expired_copies_are_forgotten_by_the_cleanup);
