//! A copy of a kept file at Google, made with one key: Google's resumable upload under
//! `BASE_URL`'s host, through the key's proxy, the content streamed from the files service.

use bytes::Bytes;
use futures::StreamExt;
use gb_proto::files::v1 as pb;
use gb_upstream::{Upstream, UpstreamFailure};
use serde_json::Value;

use super::{FileLink, own_failure};
use crate::pool::LocalKey;

/// How long a copy Google is still processing (video) is waited for.
const PROCESSING_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

impl FileLink {
    /// Uploads the kept content with `key` (Google's resumable protocol, the content streamed
    /// from the files service), and waits while Google processes it.
    pub(super) async fn upload(
        &self,
        file: &pb::File,
        key: &LocalKey,
        upstream: &Upstream,
    ) -> Result<pb::UpstreamCopy, UpstreamFailure> {
        let started = upstream
            .upload_request(reqwest::Method::POST, "files", &key.value)
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header(
                "x-goog-upload-header-content-length",
                file.filesize.to_string(),
            )
            .header("x-goog-upload-header-content-type", file.filetype.as_str())
            .json(&serde_json::json!({"file": {"displayName": file.filename}}))
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let started = checked(started, key).await?;
        let Some(upload_url) = started
            .headers()
            .get("x-goog-upload-url")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
        else {
            return Err(UpstreamFailure::transient(
                502,
                "the upstream gave no upload URL",
            ));
        };
        let content = self.content(file).await?;
        let finished = upstream
            .request_to(reqwest::Method::POST, &upload_url, &key.value)
            .header("x-goog-upload-command", "upload, finalize")
            .header("x-goog-upload-offset", "0")
            .header(reqwest::header::CONTENT_LENGTH, file.filesize.to_string())
            .body(content)
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let answer: Value = checked(finished, key)
            .await?
            .json()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let mut uploaded = answer.get("file").cloned().unwrap_or(answer);
        let waited = std::time::Instant::now();
        while uploaded["state"] == "PROCESSING" && waited.elapsed() < PROCESSING_LIMIT {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            let name = uploaded["name"].as_str().unwrap_or_default().to_owned();
            let polled = upstream
                .request(reqwest::Method::GET, &name, &key.value, true)
                .send()
                .await
                .map_err(|error| UpstreamFailure::from_transport(&error))?;
            uploaded = checked(polled, key)
                .await?
                .json()
                .await
                .map_err(|error| UpstreamFailure::from_transport(&error))?;
        }
        if uploaded["state"] == "FAILED" || uploaded["state"] == "PROCESSING" {
            return Err(UpstreamFailure::transient(
                502,
                &format!(
                    "the upstream could not process the file (state {})",
                    uploaded["state"]
                ),
            ));
        }
        let (Some(name), Some(uri)) = (uploaded["name"].as_str(), uploaded["uri"].as_str()) else {
            return Err(UpstreamFailure::transient(
                502,
                "the upstream's file has no name or uri",
            ));
        };
        let expires_at_ms = uploaded["expirationTime"]
            .as_str()
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
            .map_or_else(
                || gb_runtime::now_ms() + 48 * 3600 * 1000,
                |time| time.timestamp_millis(),
            );
        Ok(pb::UpstreamCopy {
            key_id: key.id,
            name: name.to_owned(),
            uri: uri.to_owned(),
            expires_at_ms,
        })
    }

    /// The kept content, as a body that streams from the files service.
    async fn content(&self, file: &pb::File) -> Result<reqwest::Body, UpstreamFailure> {
        let request = pb::DownloadRequest {
            caller: Some(pb::Caller {
                name: String::new(),
                admin: true,
            }),
            id: file.id,
            range_start: None,
            range_end: None,
        };
        let stream = self
            .client
            .clone()
            .download(request)
            .await
            .map_err(|status| {
                own_failure(
                    503,
                    &format!("the gateway's file store: {}", status.message()),
                )
            })?
            .into_inner();
        let data = stream.filter_map(|message| async move {
            match message {
                Ok(pb::DownloadResponse {
                    part: Some(pb::download_response::Part::Data(data)),
                }) => Some(Ok::<Bytes, tonic::Status>(data)),
                Ok(_) => None,
                Err(status) => Some(Err(status)),
            }
        });
        Ok(reqwest::Body::wrap_stream(data))
    }
}

/// The answer when it is a success, else its failure (classified, the key's value masked).
async fn checked(
    response: reqwest::Response,
    key: &LocalKey,
) -> Result<reqwest::Response, UpstreamFailure> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(UpstreamFailure::from_response(status, body).redacted(&key.value))
}
