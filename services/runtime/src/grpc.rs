//! gRPC plumbing shared by every service.
//!
//! A [`GrpcChannel`] is what every generated client runs on: a TCP channel in the microservice
//! mode, or the server's own routes called in process in the all-in-one mode (no socket, no
//! HTTP/2 framing, the same client types). Both inject the W3C trace context of the current span
//! and the internal admin token into the request metadata. Servers extract the trace context into
//! their span, serve `grpc.health.v1` and reflection (v1 and v1alpha), and stop on a token.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::{Endpoint, Server};
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::secrets::tokens_match;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The transport under every gRPC client of this project.
pub type GrpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// A transport failure under a [`GrpcChannel`]. A named type rather than a boxed trait object,
/// so that futures holding a client stay `Send` for any lifetime (a trait-object error trips
/// the compiler's higher-ranked checks in spawned tasks).
#[derive(Debug)]
pub struct ChannelError(BoxError);

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's trace context into outgoing headers.
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// Reads a trace context from incoming headers.
pub fn extract_trace_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

/// The admin token the services present to each other and require of their callers: checked
/// once, when it is made, to be a valid header value (a token that is not would otherwise send
/// every internal call without credentials).
#[derive(Clone)]
pub struct InternalToken {
    token: Arc<str>,
    bearer: http::HeaderValue,
}

impl std::fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalToken(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a valid HTTP header value (control characters or non-visible bytes)")]
pub struct InvalidToken;

impl InternalToken {
    pub fn new(token: &str) -> Result<Self, InvalidToken> {
        let mut bearer =
            http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| InvalidToken)?;
        bearer.set_sensitive(true);
        Ok(InternalToken {
            token: token.into(),
            bearer,
        })
    }
}

fn client_stack<S>(inner: S, internal_token: InternalToken) -> GrpcChannel
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let bearer = internal_token.bearer;
    let service = ServiceBuilder::new()
        .map_request(move |mut request: http::Request<Body>| {
            inject_trace_context(request.headers_mut());
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, bearer.clone());
            request
        })
        .service(inner)
        .map_err(|error: S::Error| ChannelError(error.into()));
    BoxCloneSyncService::new(service)
}

/// A lazily connected channel to another service over TCP (`http://host:port`).
pub fn connect(
    url: &str,
    internal_token: InternalToken,
) -> Result<GrpcChannel, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy();
    Ok(client_stack(channel, internal_token))
}

/// A channel that calls `routes` in this process, through the same server layers as over TCP.
pub fn in_process(routes: Routes, internal_token: InternalToken) -> GrpcChannel {
    let server = ServiceBuilder::new()
        .layer(server_trace_layer())
        .layer(RpcMetricsLayer)
        .service(routes)
        .map_response(|response| response.map(Body::new));
    client_stack(server, internal_token)
}

fn grpc_server_span(request: &http::Request<impl Sized>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let _ = span.set_parent(extract_trace_context(request.headers()));
    span
}

type ServerTraceLayer = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::GrpcErrorsAsFailures>,
    fn(&http::Request<Body>) -> tracing::Span,
    (),
    (),
    (),
    (),
    (),
>;

/// One span per RPC, a child of the caller's trace.
pub fn server_trace_layer() -> ServerTraceLayer {
    tower_http::trace::TraceLayer::new_for_grpc()
        .make_span_with(grpc_server_span as fn(&http::Request<Body>) -> tracing::Span)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Checks the internal admin token on a service's RPCs (health and reflection stay open).
#[derive(Clone)]
pub struct RequireToken {
    token: Arc<str>,
}

impl RequireToken {
    pub fn new(token: &InternalToken) -> Self {
        RequireToken {
            token: token.token.clone(),
        }
    }
}

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(|value| value.strip_prefix("Bearer ").unwrap_or(value));
        match presented {
            Some(presented) if tokens_match(presented, &self.token) => Ok(request),
            _ => Err(tonic::Status::unauthenticated("admin token required")),
        }
    }
}

/// The routes of one service plus health and reflection, and the reporter that flips health.
pub struct ServiceRoutes {
    pub routes: Routes,
    pub health: tonic_health::server::HealthReporter,
}

/// Builds a service's routes; `add` registers the service itself and marks it serving.
pub fn service_routes(
    add: impl FnOnce(&mut tonic::service::RoutesBuilder),
) -> Result<ServiceRoutes, tonic_reflection::server::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gb_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gb_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut builder = tonic::service::RoutesBuilder::default();
    builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    add(&mut builder);
    Ok(ServiceRoutes {
        routes: builder.routes(),
        health,
    })
}

/// Accepted connections with Nagle's algorithm off. (The server builder's `tcp_nodelay` applies
/// only to listeners it binds itself; without this, small gRPC frames such as stream chunks
/// wait for delayed ACKs, up to 40 ms.)
fn incoming_without_delay(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    })
}

/// Serves routes on an already-bound listener until `shutdown` is cancelled; in-flight calls
/// and open streams are let finish.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .tcp_nodelay(true)
        .layer(server_trace_layer())
        .layer(RpcMetricsLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming_without_delay(listener), shutdown.cancelled_owned())
        .await
}

/// Counts and times every RPC a server answers (`rpc_server_requests_total`,
/// `rpc_server_duration_seconds`; a stream is timed to its first response).
#[derive(Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let (service, method) = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .map(|(service, method)| (service.to_owned(), method.to_owned()))
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                // A failed call answers with its status in the headers; a success in trailers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .map_or(tonic::Code::Ok, |value| {
                        tonic::Code::from_bytes(value.as_bytes())
                    });
                let labels = [
                    ("service", service),
                    ("method", method),
                    ("code", format!("{code:?}")),
                ];
                metrics::counter!("rpc_server_requests_total", &labels).increment(1);
                metrics::histogram!("rpc_server_duration_seconds", &labels[..2])
                    .record(started.elapsed().as_secs_f64());
            }
            result
        })
    }
}

/// A call served in the same process without the gRPC hop (no encoding, no framing): it gets
/// what an RPC through [`RpcMetricsLayer`] and [`server_trace_layer`] gets, a `grpc.server`
/// span (a child of the caller's, as the trace context would make it) and the
/// `rpc_server_requests_total` and `rpc_server_duration_seconds` samples (a stream to its
/// first response).
pub async fn direct_call<T>(
    service: &'static str,
    method: &'static str,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
    );
    let started = std::time::Instant::now();
    let result = call.instrument(span).await;
    let code: metrics::SharedString = match &result {
        Ok(_) => "Ok".into(),
        Err(status) => format!("{:?}", status.code()).into(),
    };
    metrics::counter!("rpc_server_requests_total", "service" => service, "method" => method, "code" => code)
        .increment(1);
    metrics::histogram!("rpc_server_duration_seconds", "service" => service, "method" => method)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Follows a server stream for as long as the process runs: opens it, hands every message to
/// `on_message`, and after an error or the end of the stream opens it again with backoff
/// (100 ms doubling to 5 s; reset once a message arrives). Ends at shutdown.
pub async fn follow_stream<T, Open, Opened>(
    what: &'static str,
    shutdown: CancellationToken,
    mut open: Open,
    mut on_message: impl FnMut(T),
) where
    Open: FnMut() -> Opened,
    Opened:
        std::future::Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
{
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            opened = open() => opened,
        };
        match opened {
            Ok(response) => {
                let mut messages = response.into_inner();
                loop {
                    let message = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        message = messages.message() => message,
                    };
                    match message {
                        Ok(Some(message)) => {
                            backoff = FIRST_BACKOFF;
                            on_message(message);
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(what, code = ?status.code(), message = status.message(), "stream broke");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(what, code = ?status.code(), message = status.message(), "cannot open the stream; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
