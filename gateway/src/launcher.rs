//! Starts gemini-balance in either run mode, on listeners the caller has already bound (so that
//! tests bind port 0 without a race).
//!
//! - all-in-one: keys, chat and gateway in one process; the gateway and chat reach the services
//!   through in-process channels (same gRPC clients, no socket);
//! - one service: `keys`, `chat` or `gateway` on its own address, the others over gRPC.
//!
//! Shutdown order: the HTTP or gRPC server stops taking work and drains, then the chat service
//! flushes its outcome reports.

use std::sync::Arc;

use axum::serve::ListenerExt;
use gb_chat::ChatService;
use gb_keys::KeysService;
use gb_runtime::database::Database;
use gb_runtime::grpc::{self, GrpcChannel, ServiceRoutes, service_routes};
use gb_runtime::settings::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::auth::Auth;
use crate::state::{GatewayState, Translation};

pub const KEYS_SERVICE_NAME: &str = "gemini_balance.keys.v1.KeysService";
pub const CHAT_SERVICE_NAME: &str = "gemini_balance.chat.v1.ChatService";

/// The token the services present to each other: `AUTH_TOKEN`. The all-in-one mode makes a
/// random one when none is set (admin routes then stay closed); split services need it.
pub fn internal_token(settings: &Settings, all_in_one: bool) -> anyhow::Result<Arc<str>> {
    match (&settings.auth_token, all_in_one) {
        (Some(token), _) => Ok(token.as_str().into()),
        (None, true) => {
            tracing::warn!("AUTH_TOKEN is not set: every admin route is closed");
            Ok(uuid::Uuid::new_v4().to_string().into())
        }
        (None, false) => anyhow::bail!(
            "setting AUTH_TOKEN: required when services run apart (it authenticates them to each other)"
        ),
    }
}

fn warn_without_clients(settings: &Settings) {
    if settings.allowed_tokens.is_empty() {
        tracing::warn!("ALLOWED_TOKENS is empty: only the admin token can call the API routes");
    }
}

/// Runs a server until it ends, or, once `shutdown` is cancelled, for at most `limit` more:
/// open requests and streams get that long to finish.
async fn drained<E: Into<anyhow::Error>>(
    serving: impl std::future::Future<Output = Result<(), E>>,
    shutdown: &CancellationToken,
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return result.map_err(Into::into),
        _ = shutdown.cancelled() => {}
    }
    tracing::info!(
        limit_seconds = limit.as_secs_f64(),
        "draining open requests"
    );
    match tokio::time::timeout(limit, serving).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            tracing::warn!("drain timeout reached: requests still open were cut");
            Ok(())
        }
    }
}

/// Reports NOT_SERVING on gRPC health as soon as shutdown begins (probes stop routing to us).
fn not_serving_on_shutdown(
    routes: &ServiceRoutes,
    service: &'static str,
    shutdown: &CancellationToken,
) {
    let health = routes.health.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    });
}

async fn keys_routes(
    settings: &Settings,
    token: &Arc<str>,
    shutdown: &CancellationToken,
) -> anyhow::Result<ServiceRoutes> {
    let db = Database::connect(&settings.database).await?;
    tracing::info!(backend = db.backend_name(), "database connected");
    let keys = KeysService::start(settings, db, shutdown.clone()).await?;
    let routes = service_routes(|builder| {
        builder.add_service(keys.grpc_service(token.clone()));
    })?;
    routes
        .health
        .set_service_status(KEYS_SERVICE_NAME, ServingStatus::Serving)
        .await;
    not_serving_on_shutdown(&routes, KEYS_SERVICE_NAME, shutdown);
    Ok(routes)
}

async fn chat_routes(
    settings: &Settings,
    keys: GrpcChannel,
    shutdown: &CancellationToken,
) -> anyhow::Result<(ChatService, ServiceRoutes)> {
    let chat = ChatService::start(settings, keys, shutdown.clone()).await?;
    let routes = service_routes(|builder| {
        builder.add_service(chat.grpc_service());
    })?;
    routes
        .health
        .set_service_status(CHAT_SERVICE_NAME, ServingStatus::Serving)
        .await;
    not_serving_on_shutdown(&routes, CHAT_SERVICE_NAME, shutdown);
    Ok((chat, routes))
}

async fn serve_http(
    state: GatewayState,
    listener: TcpListener,
    shutdown: CancellationToken,
    drain_limit: std::time::Duration,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "gateway listening");
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    // Made into a service once: `serve(listener, router)` would rebuild the whole route table
    // for every connection (~60 KB a connection, which 10,000 open streams multiply).
    let serving = axum::serve(listener, crate::router(state).into_make_service())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    drained(serving, &shutdown, drain_limit).await
}

/// Serves `/metrics` (this process's recorder) until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    gb_runtime::metrics::install();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                gb_runtime::metrics::render(),
            )
        }),
    );
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Everything in one process.
pub async fn run_all_in_one(
    settings: Settings,
    gateway: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    warn_without_clients(&settings);
    let token = internal_token(&settings, true)?;
    let keys = keys_routes(&settings, &token, &shutdown).await?;
    let keys_channel = grpc::in_process(keys.routes, token.clone());
    let (chat, chat_routes) = chat_routes(&settings, keys_channel.clone(), &shutdown).await?;
    let chat_channel = grpc::in_process(chat_routes.routes, token.clone());
    let auth = Auth::new(settings.allowed_tokens.clone(), settings.auth_token.clone());
    let translation = Translation::from_settings(&settings);
    let state = GatewayState::new(chat_channel, keys_channel, auth, translation);
    serve_http(state, gateway, shutdown, settings.drain_timeout).await?;
    chat.flush().await;
    Ok(())
}

/// Serves one service's gRPC routes until shutdown and the drain are over.
async fn serve_grpc(
    service: &str,
    routes: ServiceRoutes,
    listener: TcpListener,
    shutdown: &CancellationToken,
    drain_limit: std::time::Duration,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "{service} service listening");
    drained(
        grpc::serve(routes.routes, listener, shutdown.clone()),
        shutdown,
        drain_limit,
    )
    .await
}

/// The keys service alone.
pub async fn run_keys(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let routes = keys_routes(&settings, &token, &shutdown).await?;
    serve_grpc("keys", routes, listener, &shutdown, settings.drain_timeout).await
}

/// The chat service alone, reaching the keys service at `KEYS_URL`.
pub async fn run_chat(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let keys = grpc::connect(&settings.keys_url, token)
        .map_err(|error| anyhow::anyhow!("setting KEYS_URL: {error}"))?;
    let (chat, routes) = chat_routes(&settings, keys, &shutdown).await?;
    serve_grpc("chat", routes, listener, &shutdown, settings.drain_timeout).await?;
    chat.flush().await;
    Ok(())
}

/// The gateway alone, reaching the services at `CHAT_URL` and `KEYS_URL`.
pub async fn run_gateway(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    warn_without_clients(&settings);
    let token = internal_token(&settings, false)?;
    let chat = grpc::connect(&settings.chat_url, token.clone())
        .map_err(|error| anyhow::anyhow!("setting CHAT_URL: {error}"))?;
    let keys = grpc::connect(&settings.keys_url, token)
        .map_err(|error| anyhow::anyhow!("setting KEYS_URL: {error}"))?;
    let auth = Auth::new(settings.allowed_tokens.clone(), settings.auth_token.clone());
    let state = GatewayState::new(chat, keys, auth, Translation::from_settings(&settings));
    serve_http(state, listener, shutdown, settings.drain_timeout).await
}
