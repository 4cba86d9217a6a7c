//! The mock's Files API, as Google's behaves where the gateway depends on it: a resumable
//! upload (start with the key → `X-Goog-Upload-URL`; the chunks authorized by that URL alone;
//! `upload, finalize` answers the File), `files/{id}` get and delete, and per-key ownership: a
//! file belongs to the key (its project) that uploaded it, and a request that references it
//! with another key answers 403 `PERMISSION_DENIED`, as Google does. Content is hashed and
//! counted, never kept (a 1 GB upload costs no memory here either).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;

/// A file the mock holds.
#[derive(Clone, Debug)]
pub struct MockFile {
    pub key: String,
    pub name: String,
    pub mime_type: String,
    pub size: u64,
    pub sha256: Vec<u8>,
    pub display_name: String,
    pub expires_at_ms: i64,
}

struct Session {
    key: String,
    declared: u64,
    mime_type: String,
    display_name: String,
    received: u64,
    hasher: sha2::Sha256,
}

pub struct MockFiles {
    files: Mutex<HashMap<String, MockFile>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// How long a new file lives (Google: 48 hours).
    lifetime: Mutex<Duration>,
    counter: std::sync::atomic::AtomicU64,
}

impl Default for MockFiles {
    fn default() -> Self {
        MockFiles {
            files: Mutex::default(),
            sessions: Mutex::default(),
            lifetime: Mutex::new(Duration::from_secs(48 * 3600)),
            counter: Default::default(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn rfc3339(ms: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm), for the mock's
    // timestamps without a time crate.
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hours, minutes, seconds, millis) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// Google's permission error for a file a key may not use.
pub fn no_permission(name: &str) -> Value {
    json!({"error": {
        "code": 403,
        "message": format!("You do not have permission to access the File {} or it may not exist.", name.trim_start_matches("files/")),
        "status": "PERMISSION_DENIED",
    }})
}

impl MockFile {
    pub fn resource(&self, base: &str) -> Value {
        let time = rfc3339(self.expires_at_ms - 48 * 3600 * 1000);
        json!({
            "name": self.name,
            "displayName": self.display_name,
            "mimeType": self.mime_type,
            "sizeBytes": self.size.to_string(),
            "createTime": time,
            "updateTime": time,
            "expirationTime": rfc3339(self.expires_at_ms),
            "sha256Hash": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.sha256),
            "uri": format!("{base}/v1beta/{}", self.name),
            "state": "ACTIVE",
            "source": "UPLOADED",
        })
    }
}

impl MockFiles {
    pub fn set_lifetime(&self, lifetime: Duration) {
        *lock(&self.lifetime) = lifetime;
    }

    /// Deletes a file behind the gateway's back (as Google may before its expiry).
    pub fn remove(&self, name: &str) {
        lock(&self.files).remove(name);
    }

    /// Every file the mock holds.
    pub fn all(&self) -> Vec<MockFile> {
        let mut files: Vec<MockFile> = lock(&self.files).values().cloned().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files
    }

    /// A resumable start with `key`: the session's URL.
    pub fn start(
        &self,
        key: &str,
        headers: &HeaderMap,
        body: &Value,
        base: &str,
    ) -> Result<String, Value> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let Ok(declared) = text("x-goog-upload-header-content-length").parse::<u64>() else {
            return Err(
                json!({"error": {"code": 400, "message": "Upload has no content length.", "status": "INVALID_ARGUMENT"}}),
            );
        };
        let id = format!(
            "mock-upload-{}",
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        lock(&self.sessions).insert(
            id.clone(),
            Session {
                key: key.to_owned(),
                declared,
                mime_type: text("x-goog-upload-header-content-type"),
                display_name: body["file"]["displayName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                received: 0,
                hasher: sha2::Sha256::new(),
            },
        );
        Ok(format!(
            "{}/upload/v1beta/files?upload_id={id}",
            base.trim_end_matches("/v1beta")
        ))
    }

    /// A chunk of a session (authorized by its id): counted and hashed as it streams; with
    /// `finalize`, the file, owned by the key that started the session.
    pub async fn chunk(
        &self,
        upload_id: &str,
        headers: &HeaderMap,
        body: Body,
        base: &str,
    ) -> (u16, &'static str, Value) {
        let command = headers
            .get("x-goog-upload-command")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let offset: u64 = headers
            .get("x-goog-upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let expected = match lock(&self.sessions).get(upload_id) {
            Some(session) => session.received,
            None => {
                return (
                    404,
                    "final",
                    json!({"error": {"code": 404, "message": "No such upload.", "status": "NOT_FOUND"}}),
                );
            }
        };
        if offset != expected {
            return (
                400,
                "active",
                json!({"error": {"code": 400, "message": "Invalid offset.", "status": "INVALID_ARGUMENT"}}),
            );
        }
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return (
                    400,
                    "active",
                    json!({"error": {"code": 400, "message": "Upload broken.", "status": "INVALID_ARGUMENT"}}),
                );
            };
            if let Some(session) = lock(&self.sessions).get_mut(upload_id) {
                session.received += chunk.len() as u64;
                session.hasher.update(&chunk);
            }
        }
        if !command.contains("finalize") {
            return (200, "active", Value::Null);
        }
        let Some(session) = lock(&self.sessions).remove(upload_id) else {
            return (
                404,
                "final",
                json!({"error": {"code": 404, "message": "No such upload.", "status": "NOT_FOUND"}}),
            );
        };
        if session.received != session.declared {
            return (
                400,
                "final",
                json!({"error": {"code": 400, "message": "Size mismatch.", "status": "INVALID_ARGUMENT"}}),
            );
        }
        let number = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lifetime = lock(&self.lifetime).as_millis() as i64;
        let file = MockFile {
            key: session.key,
            name: format!("files/mock{number:08x}"),
            mime_type: session.mime_type,
            size: session.received,
            sha256: session.hasher.finalize().to_vec(),
            display_name: session.display_name,
            expires_at_ms: now_ms() + lifetime,
        };
        let resource = file.resource(base.trim_end_matches("/v1beta"));
        lock(&self.files).insert(file.name.clone(), file);
        (200, "final", json!({"file": resource}))
    }

    /// `files/{id}` as `key` sees it: its own, else Google's 403.
    pub fn get(&self, key: &str, name: &str) -> Result<MockFile, Value> {
        lock(&self.files)
            .get(name)
            .filter(|file| file.key == key && file.expires_at_ms > now_ms())
            .cloned()
            .ok_or_else(|| no_permission(name))
    }

    pub fn delete(&self, key: &str, name: &str) -> Result<(), Value> {
        self.get(key, name)?;
        lock(&self.files).remove(name);
        Ok(())
    }

    /// The first file a generation request references that `key` may not use, as Google's
    /// 403; `None` when every reference is the key's own live file.
    pub fn check_references(&self, key: &str, request: &Value) -> Option<Value> {
        let mut refused = None;
        visit_file_uris(request, &mut |uri| {
            if refused.is_some() {
                return;
            }
            let name = match uri.find("/v1beta/") {
                Some(at) => &uri[at + "/v1beta/".len()..],
                None => uri,
            };
            if self.get(key, name).is_err() {
                refused = Some(no_permission(name));
            }
        });
        refused
    }
}

fn visit_file_uris(value: &Value, found: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(object) => {
            for (name, inner) in object {
                if matches!(name.as_str(), "fileData" | "file_data")
                    && let Some(uri) = inner
                        .get("fileUri")
                        .or_else(|| inner.get("file_uri"))
                        .and_then(Value::as_str)
                {
                    found(uri);
                } else {
                    visit_file_uris(inner, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit_file_uris(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_796_621_418_123),
            "2026-12-07T05:30:18.123Z"
        );
    }
}
