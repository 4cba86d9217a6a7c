//! Sending one attempt: a unary call read whole, or a stream read up to its first event (the
//! point after which it is never retried).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use gb_upstream::{Upstream, UpstreamFailure};

use super::Attempts;
use super::call::Call;
use crate::pool::LocalKey;

pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

impl Attempts {
    /// Whether `failure` says that the key's copy of a referenced file is gone at Google
    /// (deleted before its expiry): the copy is then forgotten, and the attempt is sent once
    /// more on the same key, which uploads a new one. The key is not at fault.
    async fn copy_was_gone(
        &self,
        call: &Call<'_>,
        key: &LocalKey,
        failure: &UpstreamFailure,
    ) -> bool {
        let Some(files) = &call.files else {
            return false;
        };
        if failure.status != 403 || !gb_upstream::failure::is_missing_file(&failure.message()) {
            return false;
        }
        self.files.forget(files, key.id).await;
        true
    }

    pub(super) async fn send_unary(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<Bytes, UpstreamFailure> {
        match self.send_unary_once(upstream, call, key.clone()).await {
            Err(failure) if self.copy_was_gone(call, &key, &failure).await => {
                self.send_unary_once(upstream, call, key).await
            }
            sent => sent,
        }
    }

    pub(super) async fn send_stream(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<(Bytes, EventStream), UpstreamFailure> {
        match self.send_stream_once(upstream, call, key.clone()).await {
            Err(failure) if self.copy_was_gone(call, &key, &failure).await => {
                self.send_stream_once(upstream, call, key).await
            }
            sent => sent,
        }
    }

    async fn send_unary_once(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<Bytes, UpstreamFailure> {
        let mut request = upstream.request_as(
            call.method.clone(),
            call.path,
            &key.value,
            call.placement,
            true,
        );
        if let Some(body) = call.body_for(&self.files, &key, upstream).await? {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let status = response.status().as_u16();
        let content_type = content_type_of(&response);
        let body = response
            .bytes()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(UpstreamFailure::from_response(status, body)
                .with_content_type(content_type.as_deref())
                .redacted(&key.value))
        }
    }

    async fn send_stream_once(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<(Bytes, EventStream), UpstreamFailure> {
        let body = call.body_for(&self.files, &key, upstream).await?;
        let response = upstream
            .request_as(
                call.method.clone(),
                call.path,
                &key.value,
                call.placement,
                false,
            )
            .header("content-type", "application/json")
            .body(body.unwrap_or_default())
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let content_type = content_type_of(&response);
            let body = response.bytes().await.unwrap_or_default();
            return Err(UpstreamFailure::from_response(status, body)
                .with_content_type(content_type.as_deref())
                .redacted(&key.value));
        }
        let mut events: EventStream = Box::pin(response.bytes_stream().eventsource());
        match events.next().await {
            Some(Ok(event)) => match stream_error(&event.data) {
                Some(failure) => Err(failure.redacted(&key.value)),
                None => Ok((Bytes::from(event.data), events)),
            },
            Some(Err(error)) => Err(broken_stream(&error)),
            None => Err(UpstreamFailure::transient(
                502,
                "the upstream returned an empty stream",
            )),
        }
    }
}

/// An answer's `Content-Type`, when it has a readable one.
fn content_type_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// An SSE event that carries `{"error": …}` instead of a chunk.
pub fn stream_error(data: &str) -> Option<UpstreamFailure> {
    let trimmed = data.trim_start().strip_prefix('{')?.trim_start();
    if !trimmed.starts_with("\"error\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let status = value["error"]["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(500);
    Some(UpstreamFailure::from_response(
        status,
        Bytes::from(data.to_owned()),
    ))
}

/// A stream that broke while being read.
pub fn broken_stream(error: &EventStreamError<reqwest::Error>) -> UpstreamFailure {
    match error {
        EventStreamError::Transport(error) => UpstreamFailure::from_transport(error),
        other => {
            UpstreamFailure::transient(502, &format!("the upstream stream was malformed: {other}"))
        }
    }
}
