//! Starts gemini-balance in either run mode, on listeners the caller has already bound (so that
//! tests bind port 0 without a race).
//!
//! - all-in-one: config, logging, keys, files, chat and gateway in one process; the gateway calls the
//!   chat service's handlers directly (`ChatService::direct`), the others reach each other
//!   through in-process channels (same gRPC clients, no socket);
//! - one service: `config`, `logging`, `keys`, `files`, `chat` or `gateway` on its own address, the
//!   others over gRPC.
//!
//! Every process starts from its environment, then follows the config service's stored
//! settings (it waits a little for them before serving).
//!
//! Shutdown, in this order (every run mode below follows it):
//!
//! 1. SIGINT or SIGTERM cancels the one shutdown token (`main.rs`): gRPC health turns
//!    NOT_SERVING, the watch streams (pool, settings) end, background loops stop;
//! 2. the HTTP or gRPC server stops accepting and lets open requests and streams finish, for at
//!    most `DRAIN_TIMEOUT`;
//! 3. the chat service sends the outcome reports still buffered to the keys service;
//! 4. the request and error records still buffered go to the logging service;
//! 5. every owner's tasks ([`Tasks`]) are waited for, bounded;
//! 6. back in `main.rs`, the metrics server stops, and the trace exporter flushes last.

mod serving;

use std::time::Duration;

use gb_chat::ChatService;
use gb_config::ConfigService;
use gb_files::FilesService;
use gb_gateway::state::{GatewayState, Services};
use gb_keys::KeysService;
use gb_logging::LoggingService;
use gb_proto::chat::v1::chat_service_server::SERVICE_NAME as CHAT_SERVICE_NAME;
use gb_proto::config::v1::config_service_server::SERVICE_NAME as CONFIG_SERVICE_NAME;
use gb_proto::files::v1::files_service_server::SERVICE_NAME as FILES_SERVICE_NAME;
use gb_proto::keys::v1::keys_service_server::SERVICE_NAME as KEYS_SERVICE_NAME;
use gb_proto::logging::v1::logging_service_server::SERVICE_NAME as LOGGING_SERVICE_NAME;
use gb_runtime::database::Database;
use gb_runtime::grpc::{self, GrpcChannel, InternalToken, ServiceRoutes};
use gb_runtime::live::LiveSettings;
use gb_runtime::log_records::{self, LogShipper};
use gb_runtime::settings::Settings;
use gb_runtime::tasks::Tasks;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use serving::serve_metrics;
use serving::{serve_grpc, serving};

/// How long a process waits for the stored settings before it serves on its environment's.
const CONFIG_WAIT: Duration = Duration::from_secs(10);

/// How long buffered records and background tasks get at the end of a shutdown.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

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

async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    let db = Database::connect(&settings.shared.database).await?;
    tracing::info!(backend = db.backend_name(), "database connected");
    Ok(db)
}

/// What a client connection may cost (`HEADER_READ_TIMEOUT`, `MAX_CONNECTIONS`). By default
/// the connections may take half the file descriptors left after a reserve: a proxied request
/// holds two (the client's and an upstream one).
fn connection_limits(settings: &Settings) -> gb_gateway::ConnectionLimits {
    const RESERVED: u64 = 512;
    let from_fd_limit = || {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
        usize::try_from(soft.saturating_sub(RESERVED) / 2)
            .unwrap_or(usize::MAX)
            .max(64)
    };
    gb_gateway::ConnectionLimits {
        header_read_timeout: settings.gateway.header_read_timeout.0,
        max_connections: settings
            .gateway
            .max_connections
            .map_or_else(from_fd_limit, |max| max as usize),
    }
}

/// What a process runs and stops, in the order of the module documentation.
struct Process {
    shutdown: CancellationToken,
    /// The process's own tasks (following the settings, health flips).
    tasks: Tasks,
    /// Each service's tasks, waited for at step 5.
    owners: Vec<Tasks>,
    /// The chat service, flushed at step 3.
    chat: Option<ChatService>,
    /// The log shipper's task, flushed at step 4.
    logs: Option<JoinHandle<()>>,
}

impl Process {
    fn new(shutdown: &CancellationToken) -> Self {
        Process {
            shutdown: shutdown.clone(),
            tasks: Tasks::new("process", shutdown),
            owners: Vec::new(),
            chat: None,
            logs: None,
        }
    }

    /// The tasks of one service of this process.
    fn owner(&mut self, name: &'static str) -> Tasks {
        let tasks = Tasks::new(name, &self.shutdown);
        self.owners.push(tasks.clone());
        tasks
    }

    /// A log shipper to the logging service, flushed at step 4.
    fn log_shipper(&mut self, logging: GrpcChannel) -> LogShipper {
        let (logs, task) = log_records::start(logging);
        self.logs = Some(task);
        logs
    }

    /// Follows the config service from now on; waits (a little) for the first snapshot.
    async fn live_settings(&self, settings: Settings, config: GrpcChannel) -> LiveSettings {
        let live = LiveSettings::new(settings, &self.tasks);
        gb_runtime::telemetry::follow_log_level(&live);
        live.follow_config_in_background(config);
        if !live.wait_for_config(CONFIG_WAIT).await {
            tracing::warn!(
                "the config service has not answered yet: serving on this process's environment until it does"
            );
        }
        live
    }

    /// Steps 3 to 5, once the servers have drained (step 2).
    async fn stop(self) {
        self.shutdown.cancel();
        if let Some(chat) = self.chat {
            chat.flush().await;
        }
        if let Some(logs) = self.logs
            && tokio::time::timeout(FLUSH_LIMIT, logs).await.is_err()
        {
            tracing::warn!("log records not flushed within 10s");
        }
        for owner in self.owners.iter().chain([&self.tasks]) {
            owner.join(FLUSH_LIMIT).await;
        }
    }
}

async fn config_routes(
    process: &mut Process,
    settings: &Settings,
    db: Database,
    token: &InternalToken,
) -> anyhow::Result<ServiceRoutes> {
    let tasks = process.owner("config");
    let config = ConfigService::start(settings, db, &tasks).await?;
    serving(CONFIG_SERVICE_NAME, &tasks, |builder| {
        builder.add_service(config.grpc_service(token));
    })
    .await
}

async fn logging_routes(
    process: &mut Process,
    live: &LiveSettings,
    db: Database,
    token: &InternalToken,
) -> anyhow::Result<ServiceRoutes> {
    let tasks = process.owner("logging");
    let logging = LoggingService::start(live.clone(), db, &tasks).await?;
    serving(LOGGING_SERVICE_NAME, &tasks, |builder| {
        builder.add_service(logging.grpc_service(token));
    })
    .await
}

async fn keys_routes(
    process: &mut Process,
    live: &LiveSettings,
    db: Database,
    token: &InternalToken,
) -> anyhow::Result<ServiceRoutes> {
    let tasks = process.owner("keys");
    let keys = KeysService::start(live, db, &tasks).await?;
    serving(KEYS_SERVICE_NAME, &tasks, |builder| {
        builder.add_service(keys.grpc_service(token));
    })
    .await
}

async fn files_routes(
    process: &mut Process,
    live: &LiveSettings,
    db: Database,
    token: &InternalToken,
) -> anyhow::Result<ServiceRoutes> {
    let tasks = process.owner("files");
    let files = FilesService::start(live, db, &tasks).await?;
    serving(FILES_SERVICE_NAME, &tasks, |builder| {
        builder.add_service(files.grpc_service(token));
    })
    .await
}

async fn chat_routes(
    process: &mut Process,
    live: &LiveSettings,
    keys: GrpcChannel,
    files: GrpcChannel,
    logs: LogShipper,
    token: &InternalToken,
) -> anyhow::Result<ServiceRoutes> {
    let tasks = process.owner("chat");
    let chat = ChatService::start(live, keys, files, logs, &tasks).await?;
    let routes = serving(CHAT_SERVICE_NAME, &tasks, |builder| {
        builder.add_service(chat.grpc_service(token));
    })
    .await?;
    process.chat = Some(chat);
    Ok(routes)
}

/// Everything in one process.
pub async fn run_all_in_one(
    settings: Settings,
    gateway: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut process = Process::new(&shutdown);
    let token = internal_token(&settings, true)?;
    let db = connect_database(&settings).await?;
    let config = config_routes(&mut process, &settings, db.clone(), &token).await?;
    let config_channel = grpc::in_process(config.routes, token.clone());
    let live = process
        .live_settings(settings, config_channel.clone())
        .await;
    warn_without_clients(&live.current());
    let logging = logging_routes(&mut process, &live, db.clone(), &token).await?;
    let logging_channel = grpc::in_process(logging.routes, token.clone());
    let logs = process.log_shipper(logging_channel.clone());
    let keys = keys_routes(&mut process, &live, db.clone(), &token).await?;
    let keys_channel = grpc::in_process(keys.routes, token.clone());
    let files = files_routes(&mut process, &live, db, &token).await?;
    let files_channel = grpc::in_process(files.routes, token.clone());
    // The gateway calls the chat service's handlers directly: no gRPC hop in one process.
    let chat_tasks = process.owner("chat");
    let chat = ChatService::start(
        &live,
        keys_channel.clone(),
        files_channel.clone(),
        logs.clone(),
        &chat_tasks,
    )
    .await?;
    let direct_chat = chat.direct();
    process.chat = Some(chat);
    let services = Services {
        chat: direct_chat,
        keys: keys_channel,
        config: config_channel,
        logging: logging_channel,
        files: files_channel,
    };
    let gateway_tasks = process.owner("gateway");
    let state = GatewayState::new(services, &live, logs, &gateway_tasks)?;
    wait_for_client_tokens(&state).await;
    let drain = live.current().shared.drain_timeout.0;
    let limits = connection_limits(&live.current());
    let served = gb_gateway::serve(state, gateway, shutdown, drain, limits).await;
    process.stop().await;
    served
}

/// Waits briefly for the managed client tokens, so that a gateway never refuses one of them
/// for having started before their list arrived.
async fn wait_for_client_tokens(state: &GatewayState) {
    if !state
        .managed_tokens
        .wait_loaded(std::time::Duration::from_secs(10))
        .await
    {
        tracing::warn!(
            "the managed client tokens have not arrived from the keys service yet: they are refused until they do"
        );
    }
}

/// A channel to another service, named by its `*_URL` setting.
fn channel_to(url: &str, setting: &str, token: &InternalToken) -> anyhow::Result<GrpcChannel> {
    grpc::connect(url, token.clone()).map_err(|error| anyhow::anyhow!("setting {setting}: {error}"))
}

/// The config service alone; it owns the `configs` table.
pub async fn run_config(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut process = Process::new(&shutdown);
    let token = internal_token(&settings, false)?;
    let db = connect_database(&settings).await?;
    let drain = settings.shared.drain_timeout.0;
    let routes = config_routes(&mut process, &settings, db, &token).await?;
    // It follows its own stored settings too (LOG_LEVEL), through an in-process channel.
    let own = grpc::in_process(routes.routes.clone(), token.clone());
    process.live_settings(settings, own).await;
    let served = serve_grpc("config", routes, listener, &shutdown, drain).await;
    process.stop().await;
    served
}

/// The services that own tables and follow the settings: keys, logging and files.
#[derive(Clone, Copy)]
enum TableOwner {
    Keys,
    Logging,
    Files,
}

/// The keys, logging or files service alone, on its own tables.
async fn run_table_owner(
    owner: TableOwner,
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut process = Process::new(&shutdown);
    let token = internal_token(&settings, false)?;
    let db = connect_database(&settings).await?;
    let drain = settings.shared.drain_timeout.0;
    let config = channel_to(&settings.shared.config_url(), "CONFIG_URL", &token)?;
    let live = process.live_settings(settings, config).await;
    let (name, routes) = match owner {
        TableOwner::Keys => ("keys", keys_routes(&mut process, &live, db, &token).await?),
        TableOwner::Logging => (
            "logging",
            logging_routes(&mut process, &live, db, &token).await?,
        ),
        TableOwner::Files => (
            "files",
            files_routes(&mut process, &live, db, &token).await?,
        ),
    };
    let served = serve_grpc(name, routes, listener, &shutdown, drain).await;
    process.stop().await;
    served
}

/// The logging service alone; it owns `error_logs` and `request_logs`.
pub async fn run_logging(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_table_owner(TableOwner::Logging, settings, listener, shutdown).await
}

/// The keys service alone; it owns the `keys` table.
pub async fn run_keys(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_table_owner(TableOwner::Keys, settings, listener, shutdown).await
}

/// The files service alone; it owns `files` and the content in `FILES_STORE`.
pub async fn run_files(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_table_owner(TableOwner::Files, settings, listener, shutdown).await
}

/// The chat service alone, reaching the keys service at `KEYS_URL`, the files service at
/// `FILES_URL` and the logging service at `LOGGING_URL`.
pub async fn run_chat(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut process = Process::new(&shutdown);
    let token = internal_token(&settings, false)?;
    let keys = channel_to(&settings.shared.keys_url(), "KEYS_URL", &token)?;
    let files = channel_to(&settings.shared.files_url(), "FILES_URL", &token)?;
    let logging = channel_to(&settings.shared.logging_url(), "LOGGING_URL", &token)?;
    let config = channel_to(&settings.shared.config_url(), "CONFIG_URL", &token)?;
    let drain = settings.shared.drain_timeout.0;
    let live = process.live_settings(settings, config).await;
    let logs = process.log_shipper(logging);
    let routes = chat_routes(&mut process, &live, keys, files, logs, &token).await?;
    let served = serve_grpc("chat", routes, listener, &shutdown, drain).await;
    process.stop().await;
    served
}

/// The gateway alone, reaching the services at `CHAT_URL`, `KEYS_URL`, `CONFIG_URL`,
/// `LOGGING_URL` and `FILES_URL`.
pub async fn run_gateway(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut process = Process::new(&shutdown);
    let token = internal_token(&settings, false)?;
    let shared = &settings.shared;
    let services = Services {
        chat: gb_gateway::chat_client::remote(channel_to(&shared.chat_url(), "CHAT_URL", &token)?),
        keys: channel_to(&shared.keys_url(), "KEYS_URL", &token)?,
        config: channel_to(&shared.config_url(), "CONFIG_URL", &token)?,
        logging: channel_to(&shared.logging_url(), "LOGGING_URL", &token)?,
        files: channel_to(&shared.files_url(), "FILES_URL", &token)?,
    };
    let drain = shared.drain_timeout.0;
    let config = services.config.clone();
    let live = process.live_settings(settings, config).await;
    warn_without_clients(&live.current());
    let logs = process.log_shipper(services.logging.clone());
    let gateway_tasks = process.owner("gateway");
    let state = GatewayState::new(services, &live, logs, &gateway_tasks)?;
    wait_for_client_tokens(&state).await;
    let limits = connection_limits(&live.current());
    let served = gb_gateway::serve(state, listener, shutdown, drain, limits).await;
    process.stop().await;
    served
}
