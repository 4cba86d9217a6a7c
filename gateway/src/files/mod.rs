//! The three views of the files service: the original design's `/files` (`seed.rs`), OpenAI's
//! Files API (`openai.rs`) and Google's (`google.rs`, its uploads `google_upload.rs`); OpenAI
//! attachments too large to go inline (`attachments.rs`). What they share is here: who the
//! caller is to the files service, a client body streamed into an upload, a file streamed back
//! with its headers and ranges, and the size limit. Bodies of these routes are never read whole
//! (`router.rs::streams_body`): the bytes go through as they arrive.

pub mod attachments;
pub mod google;
pub mod google_upload;
pub mod openai;
pub mod seed;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use gb_proto::files::v1 as pb;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Caller;
use crate::state::GatewayState;

/// The caller as the files service knows it: its name, and whether it holds the admin token.
pub(crate) fn files_caller(state: &GatewayState, caller: &Caller) -> pb::Caller {
    pb::Caller {
        name: caller.name.clone(),
        admin: state.auth.get().is_admin_caller(&caller.name),
    }
}

/// Why an upload failed: the files service's status, or the client's body.
pub(crate) enum UploadError {
    Status(tonic::Status),
    /// The body stopped or broke, or took longer than `BODY_READ_TIMEOUT` between two chunks.
    Body(String),
}

impl UploadError {
    /// The HTTP status and message: a file over the limit is 413 (the files service's
    /// RESOURCE_EXHAUSTED), the others through the code table.
    pub(crate) fn http(&self) -> (u16, String) {
        match self {
            UploadError::Status(status) => (http_status(status), status.message().to_owned()),
            UploadError::Body(message) => (400, message.clone()),
        }
    }
}

/// The HTTP status of the files service's answer (RESOURCE_EXHAUSTED there is a size).
pub(crate) fn http_status(status: &tonic::Status) -> u16 {
    match status.code() {
        tonic::Code::ResourceExhausted => 413,
        code => gb_proto::error::ErrorCode::from_grpc(code).http(),
    }
}

/// The size limit, from the live settings, in bytes.
pub(crate) fn max_bytes(state: &GatewayState) -> u64 {
    u64::from(state.settings.current().files.files_max_size_mb) * 1024 * 1024
}

/// A 413 before anything is read, when the declared size is over the limit.
pub(crate) fn declared_too_large(state: &GatewayState, headers: &HeaderMap) -> Option<String> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())?;
    let max = max_bytes(state);
    // A multipart body carries a little more than the file: allow for its framing.
    (declared > max + 64 * 1024).then(|| {
        format!(
            "the file is over the {} MB limit (FILES_MAX_SIZE_MB)",
            max / (1024 * 1024)
        )
    })
}

/// The largest data message sent to the files service.
const MAX_PIECE: usize = 1024 * 1024;

/// How much of a body refused in flight is still read (and dropped) before the answer.
const DRAINED_AFTER_REFUSAL: usize = 64 * 1024 * 1024;

/// Sends `messages` (the first already built) and then the chunks of `body` to a client-stream
/// RPC, with `end` after the last: the service keeps nothing when the body breaks (no `end`
/// then). At most a few chunks are in flight: memory does not grow with the file.
pub(crate) async fn stream_into<M, S, E, Call, Fut, T>(
    state: &GatewayState,
    first: M,
    body: S,
    data: fn(Bytes) -> M,
    end: M,
    call: Call,
) -> Result<T, UploadError>
where
    M: Send + 'static,
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
    Call: FnOnce(ReceiverStream<M>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<M>(4);
    let idle = state.body_limits.read_timeout;
    let pump = async move {
        if sender.send(first).await.is_err() {
            return Ok(());
        }
        let mut body = std::pin::pin!(body);
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => return Err("the request body stalled (BODY_READ_TIMEOUT)".to_owned()),
                Ok(Some(Err(error))) => return Err(format!("the request body broke: {error}")),
                Ok(Some(Ok(chunk))) if chunk.is_empty() => {}
                Ok(Some(Ok(mut chunk))) => {
                    // A message stays well under the services' gRPC limit.
                    let mut refused = false;
                    while !chunk.is_empty() && !refused {
                        let piece = chunk.split_to(chunk.len().min(MAX_PIECE));
                        refused = sender.send(data(piece)).await.is_err();
                    }
                    if refused {
                        // The service stopped reading (it answered: its answer tells why).
                        // A little more of the body is read and dropped, so that a client
                        // still sending reads the answer rather than a reset connection.
                        let mut dropped = 0usize;
                        while dropped < DRAINED_AFTER_REFUSAL {
                            match tokio::time::timeout(idle, body.next()).await {
                                Ok(Some(Ok(chunk))) => dropped += chunk.len(),
                                _ => break,
                            }
                        }
                        return Ok(());
                    }
                }
                Ok(None) => {
                    let _ = sender.send(end).await;
                    return Ok(());
                }
            }
        }
    };
    let (answer, pumped) = tokio::join!(call(ReceiverStream::new(receiver)), pump);
    match (answer, pumped) {
        (Ok(answer), _) => Ok(answer.into_inner()),
        (Err(_), Err(body)) => Err(UploadError::Body(body)),
        (Err(status), Ok(())) => Err(UploadError::Status(status)),
    }
}

/// Stores a body as a new file.
pub(crate) async fn upload<S, E>(
    state: &GatewayState,
    start: pb::UploadStart,
    body: S,
) -> Result<pb::File, UploadError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let message = |part| pb::UploadRequest { part: Some(part) };
    let mut files = state.files.clone();
    stream_into(
        state,
        message(pb::upload_request::Part::Start(start)),
        body,
        |data| pb::UploadRequest {
            part: Some(pb::upload_request::Part::Data(data)),
        },
        message(pb::upload_request::Part::End(pb::End {})),
        move |messages| async move { files.upload(messages).await },
    )
    .await
}

/// A byte range a client asked for (`Range: bytes=…`), one range only.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum ByteRange {
    /// `first-last` (inclusive) or `first-`.
    From { first: i64, last: Option<i64> },
    /// `-n`: the last n bytes.
    Suffix(i64),
}

/// `bytes=0-99`, `bytes=100-`, `bytes=-50`; anything else (several ranges, other units) is
/// ignored, as RFC 9110 allows: the whole file is sent.
pub(crate) fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().filter(|n| *n > 0).map(ByteRange::Suffix);
    }
    let first: i64 = first.parse().ok()?;
    let last = if last.is_empty() {
        None
    } else {
        Some(last.parse::<i64>().ok().filter(|last| *last >= first)?)
    };
    Some(ByteRange::From { first, last })
}

/// `[start, end)` of a range in a file of `size` bytes; `None` when it cannot be satisfied.
pub(crate) fn resolve_range(range: ByteRange, size: i64) -> Option<(i64, i64)> {
    match range {
        ByteRange::From { first, .. } if first >= size => None,
        ByteRange::From { first, last } => {
            Some((first, last.map_or(size, |last| (last + 1).min(size))))
        }
        ByteRange::Suffix(_) if size == 0 => None,
        ByteRange::Suffix(n) => Some(((size - n).max(0), size)),
    }
}

/// `attachment; filename="…"` with an ASCII fallback, and `filename*` (RFC 6266/8187) for any
/// other name.
pub(crate) fn content_disposition(filename: &str) -> HeaderValue {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    let value = if fallback == filename {
        format!("attachment; filename=\"{fallback}\"")
    } else {
        format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Why a download could not start.
pub(crate) enum DownloadError {
    Status(tonic::Status),
    /// 416, with the file's size.
    Unsatisfiable(i64),
}

/// A file's content as a response: 200 whole, or 206 for a satisfiable `Range`, with its type,
/// length, `ETag` (the SHA-256), `Accept-Ranges` and `Content-Disposition`.
pub(crate) async fn download(
    state: &GatewayState,
    caller: pb::Caller,
    id: i64,
    range: Option<ByteRange>,
) -> Result<Response, DownloadError> {
    let mut files = state.files.clone();
    let resolved = match range {
        None => None,
        Some(range) => {
            let file = files
                .get_file(pb::GetFileRequest {
                    caller: Some(caller.clone()),
                    id,
                })
                .await
                .map_err(DownloadError::Status)?
                .into_inner();
            Some(
                resolve_range(range, file.filesize)
                    .ok_or(DownloadError::Unsatisfiable(file.filesize))?,
            )
        }
    };
    let mut stream = files
        .download(pb::DownloadRequest {
            caller: Some(caller),
            id,
            range_start: resolved.map(|(start, _)| start),
            range_end: resolved.map(|(_, end)| end),
        })
        .await
        .map_err(DownloadError::Status)?
        .into_inner();
    let head = match stream.message().await.map_err(DownloadError::Status)? {
        Some(pb::DownloadResponse {
            part: Some(pb::download_response::Part::Head(head)),
        }) => head,
        _ => {
            return Err(DownloadError::Status(tonic::Status::internal(
                "the download had no head",
            )));
        }
    };
    let file = head.file.unwrap_or_default();
    let body = Body::from_stream(stream.filter_map(|message| async move {
        match message {
            Ok(pb::DownloadResponse {
                part: Some(pb::download_response::Part::Data(data)),
            }) => Some(Ok(data)),
            Ok(_) => None,
            Err(status) => Some(Err(std::io::Error::other(status.message().to_owned()))),
        }
    }));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    let text = |value: String| {
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.filetype)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        text((head.range_end - head.range_start).to_string()),
    );
    headers.insert(header::ETAG, text(format!("\"{}\"", file.sha256)));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&file.filename),
    );
    if resolved.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!(
            "bytes {}-{}/{}",
            head.range_start,
            head.range_end - 1,
            file.filesize
        );
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, text(range));
    }
    Ok(response)
}

/// A 416 answer for a file of `size` bytes, with the family's error body.
pub(crate) fn unsatisfiable(mut error: Response, size: i64) -> Response {
    *error.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        error.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<ByteRange> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_writes_them() {
        assert_eq!(
            range("bytes=0-99"),
            Some(ByteRange::From {
                first: 0,
                last: Some(99)
            })
        );
        assert_eq!(
            range("bytes=100-"),
            Some(ByteRange::From {
                first: 100,
                last: None
            })
        );
        assert_eq!(range("bytes=-50"), Some(ByteRange::Suffix(50)));
        assert_eq!(range("bytes=5-1"), None);
        assert_eq!(range("bytes=0-1,5-6"), None);
        assert_eq!(range("items=0-1"), None);
        assert_eq!(
            resolve_range(
                ByteRange::From {
                    first: 0,
                    last: Some(99)
                },
                10
            ),
            Some((0, 10))
        );
        assert_eq!(
            resolve_range(
                ByteRange::From {
                    first: 10,
                    last: None
                },
                10
            ),
            None
        );
        assert_eq!(resolve_range(ByteRange::Suffix(4), 10), Some((6, 10)));
        assert_eq!(resolve_range(ByteRange::Suffix(40), 10), Some((0, 10)));
    }

    #[test]
    fn a_name_outside_ascii_travels_as_filename_star() {
        assert_eq!(
            content_disposition("report.pdf").to_str().unwrap(),
            "attachment; filename=\"report.pdf\""
        );
        assert_eq!(
            content_disposition("报告 \"1\".pdf").to_str().unwrap(),
            "attachment; filename=\"__ _1_.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%221%22%2Epdf"
        );
    }
}
