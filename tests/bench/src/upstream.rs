//! A fast mock of the Gemini API for load: no parsing, no allocation beyond the answer, zero
//! delay unless asked. The model name in the path carries what a stream should do:
//! `stream-5x10` sends 5 chunks 10 ms apart; `hold-30000` sends one chunk, waits 30 s, ends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

const ANSWER: &str = r#"{"candidates":[{"content":{"parts":[{"text":"Hello from the bench upstream."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,"totalTokenCount":10},"modelVersion":"bench","responseId":"bench"}"#;

const MODELS: &str = r#"{"models":[{"name":"models/gemini-2.5-flash","displayName":"Gemini 2.5 Flash","supportedGenerationMethods":["generateContent"]}]}"#;

fn chunk(index: usize, last: bool) -> Bytes {
    let finish = if last {
        r#","finishReason":"STOP""#
    } else {
        ""
    };
    Bytes::from(format!(
        "data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"chunk {index} \"}}],\"role\":\"model\"}}{finish},\"index\":0}}],\"modelVersion\":\"bench\"}}\r\n\r\n"
    ))
}

/// (chunks, gap between them, hold after the first) for a stream's model name.
fn stream_plan(model: &str) -> (usize, Duration, Duration) {
    if let Some(hold) = model.strip_prefix("hold-").and_then(|ms| ms.parse().ok()) {
        return (2, Duration::ZERO, Duration::from_millis(hold));
    }
    if let Some((count, gap)) = model
        .strip_prefix("stream-")
        .and_then(|plan| plan.split_once('x'))
        && let (Ok(count), Ok(gap)) = (count.parse(), gap.parse())
    {
        return (count, Duration::from_millis(gap), Duration::ZERO);
    }
    (3, Duration::ZERO, Duration::ZERO)
}

fn full(status: u16, body: &'static str) -> Response<BoxBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn answer(
    request: Request<Incoming>,
    delay: Duration,
) -> Result<Response<BoxBody>, Infallible> {
    let path = request.uri().path().to_owned();
    // Read the body whole, as a real upstream would, before answering.
    let _ = request.into_body().collect().await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if path.ends_with("/models") {
        return Ok(full(200, MODELS));
    }
    if path.ends_with(":generateContent") {
        return Ok(full(200, ANSWER));
    }
    if let Some(model) = path
        .strip_suffix(":streamGenerateContent")
        .and_then(|rest| rest.rsplit('/').next())
    {
        let (count, gap, hold) = stream_plan(model);
        let frames = futures::stream::unfold(0usize, move |index| async move {
            if index == count {
                return None;
            }
            if index > 0 {
                tokio::time::sleep(if index == 1 && !hold.is_zero() {
                    hold
                } else {
                    gap
                })
                .await;
            }
            Some((
                Ok::<_, Infallible>(Frame::data(chunk(index, index + 1 == count))),
                index + 1,
            ))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/event-stream"),
        );
        return Ok(response);
    }
    Ok(full(
        404,
        r#"{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}"#,
    ))
}

pub async fn serve(address: SocketAddr, delay: Duration) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(request, delay));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
