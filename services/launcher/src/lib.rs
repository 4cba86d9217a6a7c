//! Starts gemini-balance in either run mode, on listeners the caller has already bound (so that
//! tests bind port 0 without a race).
//!
//! - all-in-one: config, logging, keys, chat and gateway in one process; they reach each other
//!   through in-process channels (same gRPC clients, no socket);
//! - one service: `config`, `logging`, `keys`, `chat` or `gateway` on its own address, the
//!   others over gRPC.
//!
//! Every process starts from its environment, then follows the config service's stored
//! settings (it waits a little for them before serving).
//!
//! Shutdown order: the HTTP or gRPC server stops taking work and drains, then the chat service
//! flushes its outcome reports and the request/error logs still buffered are sent.

use gb_chat::ChatService;
use gb_config::ConfigService;
use gb_gateway::state::{GatewayState, Services};
use gb_keys::KeysService;
use gb_logging::LoggingService;
use gb_proto::chat::v1::chat_service_server::SERVICE_NAME as CHAT_SERVICE_NAME;
use gb_proto::config::v1::config_service_server::SERVICE_NAME as CONFIG_SERVICE_NAME;
use gb_proto::keys::v1::keys_service_server::SERVICE_NAME as KEYS_SERVICE_NAME;
use gb_proto::logging::v1::logging_service_server::SERVICE_NAME as LOGGING_SERVICE_NAME;
use gb_runtime::database::Database;
use gb_runtime::grpc::{self, GrpcChannel, InternalToken, ServiceRoutes, service_routes};
use gb_runtime::live::LiveSettings;
use gb_runtime::log_records::{self, LogShipper};
use gb_runtime::settings::Settings;
use gb_runtime::shutdown::drained;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

/// How long a process waits for the stored settings before it serves on its environment's.
const CONFIG_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The token the services present to each other: `AUTH_TOKEN`. The all-in-one mode makes a
/// random one when none is set (admin routes then stay closed); split services need it.
pub fn internal_token(settings: &Settings, all_in_one: bool) -> anyhow::Result<InternalToken> {
    match (&settings.shared.auth_token, all_in_one) {
        (Some(token), _) => InternalToken::new(token.expose())
            .map_err(|error| anyhow::anyhow!("setting AUTH_TOKEN: {error}")),
        (None, true) => {
            tracing::warn!("AUTH_TOKEN is not set: every admin route is closed");
            Ok(InternalToken::new(&uuid::Uuid::new_v4().to_string())?)
        }
        (None, false) => anyhow::bail!(
            "setting AUTH_TOKEN: required when services run apart (it authenticates them to each other)"
        ),
    }
}

fn warn_without_clients(settings: &Settings) {
    if settings.gateway.allowed_tokens.expose().is_empty() {
        tracing::warn!("ALLOWED_TOKENS is empty: only the admin token can call the API routes");
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

/// A service's routes (with health and reflection), marked serving until shutdown begins.
async fn serving(
    service: &'static str,
    shutdown: &CancellationToken,
    add: impl FnOnce(&mut tonic::service::RoutesBuilder),
) -> anyhow::Result<ServiceRoutes> {
    let routes = service_routes(add)?;
    routes
        .health
        .set_service_status(service, ServingStatus::Serving)
        .await;
    not_serving_on_shutdown(&routes, service, shutdown);
    Ok(routes)
}

async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    let db = Database::connect(&settings.shared.database).await?;
    tracing::info!(backend = db.backend_name(), "database connected");
    Ok(db)
}

/// Follows the config service from now on; waits (a little) for the first snapshot.
async fn follow_config(live: &LiveSettings, config: GrpcChannel, shutdown: &CancellationToken) {
    gb_runtime::telemetry::follow_log_level(live);
    tokio::spawn(live.clone().follow_config(config, shutdown.clone()));
    if !live.wait_for_config(CONFIG_WAIT).await {
        tracing::warn!(
            "the config service has not answered yet: serving on this process's environment until it does"
        );
    }
}

async fn config_routes(
    settings: &Settings,
    db: Database,
    token: &InternalToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<ServiceRoutes> {
    let config = ConfigService::start(settings, db, shutdown.clone()).await?;
    serving(CONFIG_SERVICE_NAME, shutdown, |builder| {
        builder.add_service(config.grpc_service(token));
    })
    .await
}

async fn logging_routes(
    live: &LiveSettings,
    db: Database,
    token: &InternalToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<ServiceRoutes> {
    let logging = LoggingService::start(live.clone(), db, shutdown.clone()).await?;
    serving(LOGGING_SERVICE_NAME, shutdown, |builder| {
        builder.add_service(logging.grpc_service(token));
    })
    .await
}

async fn keys_routes(
    live: &LiveSettings,
    db: Database,
    token: &InternalToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<ServiceRoutes> {
    let keys = KeysService::start(live, db, shutdown.clone()).await?;
    serving(KEYS_SERVICE_NAME, shutdown, |builder| {
        builder.add_service(keys.grpc_service(token));
    })
    .await
}

async fn chat_routes(
    live: &LiveSettings,
    keys: GrpcChannel,
    logs: LogShipper,
    token: &InternalToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<(ChatService, ServiceRoutes)> {
    let chat = ChatService::start(live, keys, logs, shutdown.clone()).await?;
    let routes = serving(CHAT_SERVICE_NAME, shutdown, |builder| {
        builder.add_service(chat.grpc_service(token));
    })
    .await?;
    Ok((chat, routes))
}

/// Sends the log records still buffered, once every shipper clone is gone.
async fn flush_logs(task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .is_err()
    {
        tracing::warn!("log records not flushed within 10s");
    }
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
    let token = internal_token(&settings, true)?;
    let db = connect_database(&settings).await?;
    let config = config_routes(&settings, db.clone(), &token, &shutdown).await?;
    let config_channel = grpc::in_process(config.routes, token.clone());
    let live = LiveSettings::new(settings);
    follow_config(&live, config_channel.clone(), &shutdown).await;
    warn_without_clients(&live.current());
    let logging = logging_routes(&live, db.clone(), &token, &shutdown).await?;
    let logging_channel = grpc::in_process(logging.routes, token.clone());
    let (logs, logs_task) = log_records::start(logging_channel.clone());
    let keys = keys_routes(&live, db, &token, &shutdown).await?;
    let keys_channel = grpc::in_process(keys.routes, token.clone());
    let (chat, chat_routes) =
        chat_routes(&live, keys_channel.clone(), logs.clone(), &token, &shutdown).await?;
    let chat_channel = grpc::in_process(chat_routes.routes, token.clone());
    let services = Services {
        chat: chat_channel,
        keys: keys_channel,
        config: config_channel,
        logging: logging_channel,
    };
    let state = GatewayState::new(services, &live, logs)?;
    let drain = live.current().shared.drain_timeout.0;
    gb_gateway::serve(state, gateway, shutdown, drain).await?;
    chat.flush().await;
    flush_logs(logs_task).await;
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

/// A channel to another service, named by its `*_URL` setting.
fn channel_to(url: &str, setting: &str, token: &InternalToken) -> anyhow::Result<GrpcChannel> {
    grpc::connect(url, token.clone()).map_err(|error| anyhow::anyhow!("setting {setting}: {error}"))
}

/// The live settings of a split service: its environment, then the config service's values.
async fn live_settings(
    settings: Settings,
    token: &InternalToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<LiveSettings> {
    let config = channel_to(&settings.shared.config_url(), "CONFIG_URL", token)?;
    let live = LiveSettings::new(settings);
    follow_config(&live, config, shutdown).await;
    Ok(live)
}

/// The config service alone; it owns the `configs` table.
pub async fn run_config(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let db = connect_database(&settings).await?;
    let routes = config_routes(&settings, db, &token, &shutdown).await?;
    // It follows its own stored settings too (LOG_LEVEL), through an in-process channel.
    let live = LiveSettings::new(settings.clone());
    follow_config(
        &live,
        grpc::in_process(routes.routes.clone(), token.clone()),
        &shutdown,
    )
    .await;
    serve_grpc(
        "config",
        routes,
        listener,
        &shutdown,
        settings.shared.drain_timeout.0,
    )
    .await
}

/// The logging service alone; it owns `error_logs` and `request_logs`.
pub async fn run_logging(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let db = connect_database(&settings).await?;
    let drain = settings.shared.drain_timeout.0;
    let live = live_settings(settings, &token, &shutdown).await?;
    let routes = logging_routes(&live, db, &token, &shutdown).await?;
    serve_grpc("logging", routes, listener, &shutdown, drain).await
}

/// The keys service alone; it owns the `keys` table.
pub async fn run_keys(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let db = connect_database(&settings).await?;
    let drain = settings.shared.drain_timeout.0;
    let live = live_settings(settings, &token, &shutdown).await?;
    let routes = keys_routes(&live, db, &token, &shutdown).await?;
    serve_grpc("keys", routes, listener, &shutdown, drain).await
}

/// The chat service alone, reaching the keys service at `KEYS_URL` and the logging service at
/// `LOGGING_URL`.
pub async fn run_chat(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let keys = channel_to(&settings.shared.keys_url(), "KEYS_URL", &token)?;
    let logging = channel_to(&settings.shared.logging_url(), "LOGGING_URL", &token)?;
    let drain = settings.shared.drain_timeout.0;
    let live = live_settings(settings, &token, &shutdown).await?;
    let (logs, logs_task) = log_records::start(logging);
    let (chat, routes) = chat_routes(&live, keys, logs, &token, &shutdown).await?;
    serve_grpc("chat", routes, listener, &shutdown, drain).await?;
    chat.flush().await;
    flush_logs(logs_task).await;
    Ok(())
}

/// The gateway alone, reaching the services at `CHAT_URL`, `KEYS_URL`, `CONFIG_URL` and
/// `LOGGING_URL`.
pub async fn run_gateway(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = internal_token(&settings, false)?;
    let services = Services {
        chat: channel_to(&settings.shared.chat_url(), "CHAT_URL", &token)?,
        keys: channel_to(&settings.shared.keys_url(), "KEYS_URL", &token)?,
        config: channel_to(&settings.shared.config_url(), "CONFIG_URL", &token)?,
        logging: channel_to(&settings.shared.logging_url(), "LOGGING_URL", &token)?,
    };
    let drain = settings.shared.drain_timeout.0;
    let live = live_settings(settings, &token, &shutdown).await?;
    warn_without_clients(&live.current());
    let (logs, logs_task) = log_records::start(services.logging.clone());
    let state = GatewayState::new(services, &live, logs)?;
    gb_gateway::serve(state, listener, shutdown, drain).await?;
    flush_logs(logs_task).await;
    Ok(())
}
