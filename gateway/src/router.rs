//! The route table: which paths exist, which token each needs (the middleware: `guards.rs`),
//! and the HTTP span of a request.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::errors::{anthropic_error, google_error, openai_error};
use crate::guards::{
    keys_page_for_browsers, require_admin, require_admin_openai, require_client,
    require_client_anthropic, require_client_any_family, require_client_or_console,
    require_client_or_session,
};
use crate::request_log::record_request;
use crate::state::GatewayState;
use crate::{
    anthropic, config_routes, gemini_routes, key_admin_routes, logs_routes, openai,
    simple_chat_routes, stats_routes, token_routes,
};

/// Whether a request comes from a Gemini-family client (`x-goog-api-key` or `key=`), which
/// gets Google's shapes where a path is shared with the OpenAI family (`GET /v1/models`).
pub(crate) fn gemini_family(headers: &axum::http::HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key("x-goog-api-key")
        || query.is_some_and(|query| {
            url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "key")
        })
}

/// `GET /v1/models`: Google's list for Gemini-family clients, Anthropic's for Anthropic's SDKs,
/// OpenAI's for the others.
async fn v1_models(
    state: State<GatewayState>,
    caller: axum::Extension<crate::auth::Caller>,
    query: axum::extract::Query<gemini_routes::ListQuery>,
    headers: axum::http::HeaderMap,
    raw_query: axum::extract::RawQuery,
) -> Response {
    if gemini_family(&headers, raw_query.0.as_deref()) {
        gemini_routes::list_models(state, caller, query).await
    } else if anthropic::sdk_headers(&headers) {
        anthropic::messages::list_models(state, caller).await
    } else {
        openai::models::list(state, caller).await
    }
}

/// `GET /v1/models/{model}`: likewise.
async fn v1_model(
    state: State<GatewayState>,
    caller: axum::Extension<crate::auth::Caller>,
    model: axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    raw_query: axum::extract::RawQuery,
) -> Response {
    if gemini_family(&headers, raw_query.0.as_deref()) {
        gemini_routes::get_model(state, caller, model).await
    } else {
        openai::models::retrieve(state, caller, model).await
    }
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "healthy"}))
}

fn openai_family(request: &Request) -> bool {
    let path = request.uri().path();
    !gemini_family(request.headers(), request.uri().query())
        && (path.starts_with("/v1/") || path.starts_with("/hf/v1/") || path.starts_with("/openai/"))
}

async fn not_found(request: Request) -> Response {
    let message = format!("no route for {} {}", request.method(), request.uri().path());
    if anthropic::family(&request) {
        anthropic_error(404, &message)
    } else if openai_family(&request) {
        openai_error(404, &message)
    } else {
        google_error(404, &message)
    }
}

/// A path fit for logs and traces: the query is dropped (it may carry `key=`) and key values
/// are masked: the segment after gemini-balance's key routes (`verify-key/{key}`, …) and any
/// segment that looks like a Google key.
pub(crate) fn loggable_path(path: &str) -> String {
    const KEY_ROUTES: [&str; 4] = [
        "verify-key",
        "reset-fail-count",
        "key-usage-details",
        "keys",
    ];
    let mut previous = "";
    path.split('/')
        .map(|segment| {
            let masked = if (KEY_ROUTES.contains(&previous) && segment.parse::<i64>().is_err()
                || segment.starts_with("AIza"))
                && !segment.is_empty()
            {
                gb_runtime::secrets::mask_key(segment)
            } else {
                segment.to_owned()
            };
            previous = segment;
            masked
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn http_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    // This layer runs after routing, so the route template is known (except for the fallback).
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    // Field values are computed only when the span is enabled.
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{} {}", request.method(), route),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        url.path = %loggable_path(request.uri().path()),
        http.response.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(gb_runtime::grpc::extract_trace_context(request.headers()));
    span
}

/// What axum answers on its own (a body over the limit, a body that could not be read in time,
/// a method the route does not take) comes as plain text: give it the client family's JSON shape.
async fn shape_plain_errors(
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let anthropic_family = anthropic::family(&request);
    let openai_family = openai_family(&request);
    let response = next(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        });
    let upstreams_own = response
        .extensions()
        .get::<crate::errors::UpstreamsOwnBody>()
        .is_some();
    // JSON, and the console's pages (HTML), are in their shape already.
    if !(status.is_client_error() || status.is_server_error()) || is_json || upstreams_own {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        text
    };
    if anthropic_family {
        anthropic_error(status.as_u16(), &message)
    } else if openai_family {
        openai_error(status.as_u16(), &message)
    } else {
        google_error(status.as_u16(), &message)
    }
}

/// `http_server_requests_total` and `http_server_request_duration_seconds` (to the response
/// head: a stream's body is not waited for), by route template, never by raw path.
async fn record_http_metrics(
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || "unmatched".to_owned(),
            |matched| matched.as_str().to_owned(),
        );
    let started = std::time::Instant::now();
    let response = next(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_server_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_server_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Whether a request's body is a file, streamed to the files service as it arrives instead of
/// read whole (`files/`: its limit is `FILES_MAX_SIZE_MB`, its pace `BODY_READ_TIMEOUT` per chunk).
fn streams_body(request: &Request) -> bool {
    use axum::http::Method;
    let path = request.uri().path();
    let google_upload = path.starts_with("/upload/") || path.starts_with("/gemini/upload/");
    match *request.method() {
        Method::POST => matches!(path, "/files" | "/v1/files" | "/hf/v1/files") || google_upload,
        Method::PUT => google_upload,
        _ => false,
    }
}

/// What every request meets before its route's own middleware, in one layer (a router's
/// layer clones the whole stack below it for each request, so five of them cost five clones of
/// it): the metrics, the request log, the family's shape for plain errors, the head limits, the
/// body read whole, in that order from the outside in.
async fn front(State(state): State<GatewayState>, request: Request, next: Next) -> Response {
    let state = &state;
    record_http_metrics(request, async move |request| {
        record_request(state, request, async move |request| {
            shape_plain_errors(request, async move |request| {
                crate::head_limits::check_head(request, async move |request| {
                    if streams_body(&request) {
                        return next.run(request).await;
                    }
                    crate::body::read_whole_body(
                        &state.body_limits,
                        request,
                        async move |request| next.run(request).await,
                    )
                    .await
                })
                .await
            })
            .await
        })
        .await
    })
    .await
}

fn record_status(response: &Response, _latency: std::time::Duration, span: &tracing::Span) {
    span.record("http.response.status_code", response.status().as_u16());
}

pub fn router(state: GatewayState) -> Router {
    let client = from_fn_with_state(state.clone(), require_client);
    let client_any_family = from_fn_with_state(state.clone(), require_client_any_family);
    let client_anthropic = from_fn_with_state(state.clone(), require_client_anthropic);
    let admin = from_fn_with_state(state.clone(), require_admin);
    let admin_openai = from_fn_with_state(state.clone(), require_admin_openai);

    let gemini = gemini_routes::routes()
        .merge(crate::files::google::routes())
        .route_layer(client.clone());
    let google_uploads = crate::files::google_upload::upload_routes()
        .route_layer(from_fn_with_state(state.clone(), require_client_or_session));
    let seed_files = crate::files::seed::routes()
        .route_layer(from_fn_with_state(state.clone(), require_client_or_console));
    let gemini_balance_keys =
        key_admin_routes::gemini_balance_key_routes().route_layer(admin.clone());
    let key_resource = key_admin_routes::key_resource_routes()
        .route_layer(admin.clone())
        .route_layer(axum::middleware::from_fn(keys_page_for_browsers));
    let operator_api = config_routes::routes()
        .merge(logs_routes::routes())
        .merge(stats_routes::routes())
        .merge(token_routes::routes())
        .route_layer(admin);
    let key_list = key_admin_routes::key_list_routes().route_layer(admin_openai);
    // /v1 and /hf/v1: the OpenAI format, and (recent google-genai SDKs default to v1) the
    // Gemini-native model actions; `GET models` answers each family in its own shape.
    let v1 = Router::new()
        .route("/models", get(v1_models))
        .route(
            "/models/{model_action}",
            get(v1_model).post(gemini_routes::model_action),
        )
        .merge(openai::routes())
        .merge(crate::files::openai::routes())
        .route_layer(client_any_family.clone())
        .merge(anthropic::routes().route_layer(client_anthropic.clone()))
        .merge(key_list);
    // /anthropic/v1: the Messages API where a base URL must not meet the OpenAI routes.
    let anthropic_v1 = anthropic::routes()
        .route("/models", get(anthropic::messages::list_models))
        .route_layer(client_anthropic);
    let openai_passthrough = openai::passthrough_routes().route_layer(client_any_family.clone());
    let simple_chat = simple_chat_routes::routes().route_layer(client_any_family);

    Router::new()
        .route("/health", get(health))
        .nest("/v1beta", gemini.clone())
        .nest("/gemini/v1beta", gemini.merge(gemini_balance_keys))
        .nest("/v1", v1.clone())
        .nest("/hf/v1", v1)
        .nest("/openai/v1", openai_passthrough)
        .nest("/anthropic/v1", anthropic_v1)
        .nest("/upload/v1beta", google_uploads.clone())
        .nest("/upload/v1", google_uploads.clone())
        .nest("/gemini/upload/v1beta", google_uploads.clone())
        .nest("/gemini/upload/v1", google_uploads)
        .merge(simple_chat)
        .merge(seed_files)
        .merge(key_resource)
        .merge(operator_api)
        .merge(crate::console::routes())
        .fallback(not_found)
        // The size limit is `body.rs`'s, enforced once, before the extractors see the body:
        // a body too large is refused on its header, one sent too slowly is cut off, and a URI
        // or headers too large are refused before the body is read (`front`).
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), front))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(
                    http_span as fn(&axum::http::Request<axum::body::Body>) -> tracing::Span,
                )
                .on_request(())
                .on_response(record_status as fn(&Response, std::time::Duration, &tracing::Span))
                .on_failure(()),
        )
        .with_state(state)
}
