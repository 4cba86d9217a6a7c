//! Files the gateway keeps, as requests reference them: `fileData.fileUri` naming
//! `files/file-<id>` (the name the gateway's Files API gives). A Gemini file belongs to the key
//! whose project uploaded it, so each attempt's body gets, for its key, that key's copy of each
//! file: the one the files service remembers, else one uploaded now from the kept content
//! (through `BASE_URL`'s upload endpoint and the key's proxy) and remembered. The pick prefers
//! keys that hold copies; a key cooling down, disabled or removed is simply not picked, and
//! the file goes with the key that is. A request that names no such file costs a byte search,
//! no RPC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gb_proto::chat::ChatError;
use gb_proto::files::v1 as pb;
use gb_proto::files::v1::files_service_client::FilesServiceClient;
use gb_runtime::grpc::GrpcChannel;
use gb_upstream::{FailureClass, Upstream, UpstreamFailure};
use serde_json::Value;

use crate::pool::LocalKey;

mod upload;

/// What every reference to a gateway file contains.
const MARK: &[u8] = b"files/file-";

/// Google keeps a file for 48 hours; a copy this close to its end is made again.
const EXPIRY_MARGIN_MS: i64 = 10 * 60 * 1000;

/// The id of a gateway file a `fileUri` names: `files/file-7`, or any URL ending in it.
pub fn file_ref(uri: &str) -> Option<i64> {
    let at = uri.rfind("files/file-")?;
    let before = &uri[..at];
    if !(before.is_empty() || before.ends_with('/')) {
        return None;
    }
    uri[at + MARK.len()..].parse().ok().filter(|id| *id > 0)
}

/// Every `fileData`/`file_data` object of a body, in order.
fn file_data_mut(value: &mut Value, found: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            for (name, inner) in object.iter_mut() {
                if let ("fileData" | "file_data", Value::Object(data)) =
                    (name.as_str(), &mut *inner)
                {
                    found(data);
                } else {
                    file_data_mut(inner, found);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                file_data_mut(item, found);
            }
        }
        _ => {}
    }
}

fn uri_of(data: &serde_json::Map<String, Value>) -> Option<&str> {
    data.get("fileUri")
        .or_else(|| data.get("file_uri"))
        .and_then(Value::as_str)
}

/// A failure of this gateway's own (its file store), in Google's shape: not the key's fault,
/// not retried on another key.
fn own_failure(status: u16, message: &str) -> UpstreamFailure {
    let mut failure = UpstreamFailure::transient(status, message);
    failure.class = FailureClass::ClientError;
    failure
}

/// A referenced file, with the copies known so far (this request adds the ones it makes).
struct Referenced {
    file: pb::File,
    copies: Mutex<HashMap<i64, pb::UpstreamCopy>>,
}

/// The gateway files a request references.
pub struct FileRefs {
    body: Value,
    files: Vec<Referenced>,
}

impl FileRefs {
    /// The keys that hold a copy of a referenced file, those holding the most first.
    pub fn preferred_keys(&self, now_ms: i64) -> Vec<i64> {
        let mut held: HashMap<i64, usize> = HashMap::new();
        for file in &self.files {
            for copy in file
                .file
                .copies
                .iter()
                .filter(|copy| copy.expires_at_ms > now_ms + EXPIRY_MARGIN_MS)
            {
                *held.entry(copy.key_id).or_default() += 1;
            }
        }
        let mut keys: Vec<(i64, usize)> = held.into_iter().collect();
        keys.sort_by_key(|(id, count)| (std::cmp::Reverse(*count), *id));
        keys.into_iter().map(|(id, _)| id).collect()
    }
}

#[derive(Clone)]
pub struct FileLink {
    client: FilesServiceClient<GrpcChannel>,
}

impl FileLink {
    pub fn new(channel: GrpcChannel) -> Self {
        FileLink {
            client: FilesServiceClient::new(channel),
        }
    }

    /// The gateway files `body` references, as `caller` may see them; `None` when it names
    /// none (no RPC then). A file the caller may not see is Google's 403.
    pub async fn resolve(&self, caller: &str, body: &Bytes) -> Result<Option<FileRefs>, ChatError> {
        if memchr::memmem::find(body, MARK).is_none() {
            return Ok(None);
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return Ok(None);
        };
        let mut ids = Vec::new();
        file_data_mut(&mut value, &mut |data| {
            if let Some(id) = uri_of(data).and_then(file_ref)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        });
        if ids.is_empty() {
            return Ok(None);
        }
        let mut files = Vec::with_capacity(ids.len());
        for id in ids {
            let request = pb::GetFileRequest {
                caller: Some(pb::Caller {
                    name: caller.to_owned(),
                    admin: false,
                }),
                id,
            };
            let file = match self.client.clone().get_file(request).await {
                Ok(file) => file.into_inner(),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(ChatError::local(
                        403,
                        format!(
                            "You do not have permission to access the File file-{id} or it may not exist."
                        ),
                    ));
                }
                Err(status) => {
                    return Err(ChatError::local(
                        503,
                        format!("the gateway's file store: {}", status.message()),
                    ));
                }
            };
            let copies = file
                .copies
                .iter()
                .map(|copy| (copy.key_id, copy.clone()))
                .collect();
            files.push(Referenced {
                file,
                copies: Mutex::new(copies),
            });
        }
        Ok(Some(FileRefs { body: value, files }))
    }

    /// The body for an attempt on `key`: each reference replaced by the key's own copy (made
    /// now when it has none), with the file's type when the client gave none.
    pub async fn body_for(
        &self,
        refs: &FileRefs,
        key: &LocalKey,
        upstream: &Upstream,
    ) -> Result<Bytes, UpstreamFailure> {
        let mut uris: HashMap<i64, (String, String)> = HashMap::new();
        for file in &refs.files {
            let copy = self.copy_for(file, key, upstream).await?;
            uris.insert(file.file.id, (copy.uri, file.file.filetype.clone()));
        }
        let mut body = refs.body.clone();
        file_data_mut(&mut body, &mut |data| {
            let Some((uri, filetype)) =
                uri_of(data).and_then(file_ref).and_then(|id| uris.get(&id))
            else {
                return;
            };
            let (uri, filetype) = (uri.clone(), filetype.clone());
            let name = if data.contains_key("file_uri") {
                "file_uri"
            } else {
                "fileUri"
            };
            data.insert(name.into(), Value::String(uri));
            if !data.contains_key("mimeType") && !data.contains_key("mime_type") {
                data.insert("mimeType".into(), Value::String(filetype));
            }
        });
        serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|error| own_failure(500, &format!("the request body: {error}")))
    }

    async fn copy_for(
        &self,
        file: &Referenced,
        key: &LocalKey,
        upstream: &Upstream,
    ) -> Result<pb::UpstreamCopy, UpstreamFailure> {
        let now = gb_runtime::now_ms();
        let known = file
            .copies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key.id)
            .filter(|copy| copy.expires_at_ms > now + EXPIRY_MARGIN_MS)
            .cloned();
        if let Some(copy) = known {
            return Ok(copy);
        }
        let copy = self.upload(&file.file, key, upstream).await?;
        metrics::counter!("gemini_file_copies_made_total").increment(1);
        file.copies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.id, copy.clone());
        let record = pb::RecordUpstreamCopyRequest {
            file_id: file.file.id,
            copy: Some(copy.clone()),
        };
        if let Err(status) = self.client.clone().record_upstream_copy(record).await {
            tracing::warn!(file = file.file.id, error = %status.message(), "an upstream copy was made but not recorded");
        }
        Ok(copy)
    }

    /// Forgets `key_id`'s copies of the referenced files (Google no longer has them), here
    /// and in the files service; the next body for that key uploads new ones.
    pub async fn forget(&self, refs: &FileRefs, key_id: i64) {
        for file in &refs.files {
            let had = file
                .copies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key_id)
                .is_some();
            let request = pb::ForgetUpstreamCopyRequest {
                file_id: file.file.id,
                key_id,
            };
            if had && let Err(status) = self.client.clone().forget_upstream_copy(request).await {
                tracing::warn!(file = file.file.id, error = %status.message(), "a copy gone upstream was not forgotten");
            }
        }
        metrics::counter!("gemini_file_copies_gone_total").increment(1);
    }

    /// Deletes copies at Google with the keys that made them; answers how many went.
    pub async fn delete_copies(
        &self,
        copies: &[gb_proto::chat::v1::UpstreamFile],
        key_of: impl Fn(i64) -> Option<Arc<LocalKey>>,
        upstream: &Upstream,
    ) -> u32 {
        let mut deleted = 0;
        for copy in copies {
            let Some(key) = key_of(copy.key_id) else {
                continue;
            };
            if !copy.name.starts_with("files/") || copy.name.contains("..") {
                continue;
            }
            match upstream
                .request(reqwest::Method::DELETE, &copy.name, &key.value, true)
                .send()
                .await
            {
                Ok(answer) if answer.status().is_success() || answer.status() == 404 => {
                    deleted += 1
                }
                Ok(answer) => tracing::warn!(
                    status = answer.status().as_u16(),
                    "an upstream copy was not deleted"
                ),
                Err(error) => tracing::warn!(%error, "an upstream copy was not deleted"),
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_the_gateway_files_names_and_urls_ending_in_them() {
        assert_eq!(file_ref("files/file-7"), Some(7));
        assert_eq!(
            file_ref("https://gw.example/v1beta/files/file-12"),
            Some(12)
        );
        assert_eq!(
            file_ref("https://generativelanguage.googleapis.com/v1beta/files/abc123"),
            None
        );
        assert_eq!(file_ref("files/file-x"), None);
        assert_eq!(file_ref("myfiles/file-3"), None);
        assert_eq!(file_ref("files/file-0"), None);
    }

    #[tokio::test]
    async fn a_body_that_names_no_gateway_file_costs_no_rpc() {
        // The files service is out of reach: any call would fail.
        let channel = gb_runtime::grpc::connect(
            "http://127.0.0.1:9",
            gb_runtime::grpc::InternalToken::new("test").unwrap(),
        )
        .unwrap();
        let link = FileLink::new(channel);
        let google = Bytes::from_static(
            br#"{"contents":[{"parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}"#,
        );
        assert!(matches!(link.resolve("client", &google).await, Ok(None)));
        let ours = Bytes::from_static(
            br#"{"contents":[{"parts":[{"fileData":{"fileUri":"files/file-3"}}]}]}"#,
        );
        assert!(
            link.resolve("client", &ours).await.is_err(),
            "a gateway file is looked up (and the service is unreachable here)"
        );
    }

    #[test]
    fn every_file_data_is_found_in_both_spellings() {
        let mut body = serde_json::json!({
            "contents": [{"parts": [
                {"text": "hi"},
                {"fileData": {"fileUri": "files/file-1"}},
                {"file_data": {"file_uri": "https://x/v1beta/files/file-2", "mime_type": "a/b"}}
            ]}]
        });
        let mut found = Vec::new();
        file_data_mut(&mut body, &mut |data| {
            found.push(uri_of(data).and_then(file_ref))
        });
        assert_eq!(found, vec![Some(1), Some(2)]);
    }
}
