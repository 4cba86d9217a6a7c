//! `gemini-balance`: with no argument, every service in one process; with `gateway`, `chat`,
//! `keys`, `config`, `logging` or `files`, that one service on its own address. Settings come from the
//! environment and `.env`, then from the config service.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gb_launcher as launcher;
use gb_runtime::settings::Settings;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "gemini-balance",
    version,
    about = "A key-pooling gateway for the Gemini API"
)]
struct Cli {
    #[command(subcommand)]
    service: Option<Service>,
}

#[derive(Subcommand, Clone, Copy)]
enum Service {
    /// The HTTP front (GATEWAY_ADDR, default 0.0.0.0:8000); reaches every other service.
    Gateway,
    /// The chat service over gRPC (CHAT_ADDR, default 0.0.0.0:50051); reaches KEYS_URL,
    /// LOGGING_URL and CONFIG_URL.
    Chat,
    /// The keys service over gRPC (KEYS_ADDR, default 0.0.0.0:50052); owns the `keys` table.
    Keys,
    /// The config service over gRPC (CONFIG_ADDR, default 0.0.0.0:50053); owns `configs`.
    Config,
    /// The logging service over gRPC (LOGGING_ADDR, default 0.0.0.0:50054); owns the logs.
    Logging,
    /// The files service over gRPC (FILES_ADDR, default 0.0.0.0:50055); owns `files` and the
    /// content (FILES_STORE).
    Files,
    /// Prints the effective settings as JSON, by name (secrets masked), and exits.
    ShowSettings,
    /// Exits 0 when the local service answers its health check: the gateway's /health on
    /// GATEWAY_ADDR, or gRPC health on the service's address (for container health checks).
    Probe {
        #[arg(value_enum, default_value = "gateway")]
        service: ProbeTarget,
    },
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum ProbeTarget {
    Gateway,
    Chat,
    Keys,
    Config,
    Logging,
    Files,
}

/// The address to probe: the listen address, with an unspecified host made loopback.
fn local(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    }
}

async fn probe(target: ProbeTarget, settings: &Settings) -> anyhow::Result<()> {
    let timeout = std::time::Duration::from_secs(3);
    match target {
        ProbeTarget::Gateway => {
            let url = format!("http://{}/health", local(settings.shared.gateway_addr));
            let answer = reqwest::Client::new()
                .get(&url)
                .timeout(timeout)
                .send()
                .await?;
            anyhow::ensure!(
                answer.status().is_success(),
                "{url} answered {}",
                answer.status()
            );
        }
        ProbeTarget::Chat
        | ProbeTarget::Keys
        | ProbeTarget::Config
        | ProbeTarget::Logging
        | ProbeTarget::Files => {
            let address = local(match target {
                ProbeTarget::Chat => settings.shared.chat_addr,
                ProbeTarget::Keys => settings.shared.keys_addr,
                ProbeTarget::Config => settings.shared.config_addr,
                ProbeTarget::Files => settings.shared.files_addr,
                _ => settings.shared.logging_addr,
            });
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
                .timeout(timeout)
                .connect()
                .await?;
            let answer = tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await?
                .into_inner();
            anyhow::ensure!(
                answer.status() == tonic_health::pb::health_check_response::ServingStatus::Serving,
                "{address} is not serving"
            );
        }
    }
    Ok(())
}

async fn bind(address: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("setting {setting}: cannot listen on {address}: {error}"))
}

async fn run(cli: Cli, settings: Settings, file_limit: std::io::Result<u64>) -> anyhow::Result<()> {
    if let Some(Service::Probe { service }) = cli.service {
        return probe(service, &settings).await;
    }
    if let Some(Service::ShowSettings) = cli.service {
        use std::io::Write;
        writeln!(std::io::stdout(), "{:#}", settings.masked_view())?;
        return Ok(());
    }
    let service_name = match cli.service {
        None => "gemini-balance",
        Some(Service::Gateway) => "gemini-balance-gateway",
        Some(Service::Chat) => "gemini-balance-chat",
        Some(Service::Keys) => "gemini-balance-keys",
        Some(Service::Config) => "gemini-balance-config",
        Some(Service::Logging) => "gemini-balance-logging",
        Some(Service::Files) => "gemini-balance-files",
        Some(Service::Probe { .. } | Service::ShowSettings) => "gemini-balance",
    };
    let _telemetry = gb_runtime::telemetry::init(&settings, service_name)?;
    tracing::info!(?settings, "starting {service_name}");
    match file_limit {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "the open-file limit could not be raised"),
    }
    // The shutdown order is the launcher's (`lib.rs`); here: 1, the token, and 6, the metrics
    // server and the trace exporter (`_telemetry`, dropped last).
    let (shutdown, signal_listener) = gb_runtime::shutdown::on_signal();
    gb_runtime::metrics::install();
    let metrics_listener = bind(settings.shared.metrics_addr, "METRICS_ADDR").await?;
    let metrics = tokio::spawn(launcher::serve_metrics(metrics_listener, shutdown.clone()));
    let result = match cli.service {
        None => {
            let listener = bind(settings.shared.gateway_addr, "GATEWAY_ADDR").await?;
            launcher::run_all_in_one(settings, listener, shutdown.clone()).await
        }
        Some(Service::Gateway) => {
            let listener = bind(settings.shared.gateway_addr, "GATEWAY_ADDR").await?;
            launcher::run_gateway(settings, listener, shutdown.clone()).await
        }
        Some(Service::Chat) => {
            let listener = bind(settings.shared.chat_addr, "CHAT_ADDR").await?;
            launcher::run_chat(settings, listener, shutdown.clone()).await
        }
        Some(Service::Keys) => {
            let listener = bind(settings.shared.keys_addr, "KEYS_ADDR").await?;
            launcher::run_keys(settings, listener, shutdown.clone()).await
        }
        Some(Service::Config) => {
            let listener = bind(settings.shared.config_addr, "CONFIG_ADDR").await?;
            launcher::run_config(settings, listener, shutdown.clone()).await
        }
        Some(Service::Logging) => {
            let listener = bind(settings.shared.logging_addr, "LOGGING_ADDR").await?;
            launcher::run_logging(settings, listener, shutdown.clone()).await
        }
        Some(Service::Files) => {
            let listener = bind(settings.shared.files_addr, "FILES_ADDR").await?;
            launcher::run_files(settings, listener, shutdown.clone()).await
        }
        Some(Service::Probe { .. } | Service::ShowSettings) => Ok(()),
    };
    shutdown.cancel();
    let _ = signal_listener.await;
    let _ = metrics.await;
    tracing::info!("stopped");
    result
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_environment() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("gemini-balance: {error}");
            return ExitCode::from(2);
        }
    };
    // What depends on the run mode is checked too before any port opens.
    let split = matches!(
        cli.service,
        Some(
            Service::Gateway
                | Service::Chat
                | Service::Keys
                | Service::Config
                | Service::Logging
                | Service::Files
        )
    );
    if split && let Err(error) = launcher::internal_token(&settings, false) {
        eprintln!("gemini-balance: {error:#}");
        return ExitCode::from(2);
    }
    // Every open connection is a file: the soft limit goes up to the hard one (10,000 open
    // streams need 20,000), and MAX_CONNECTIONS defaults to what that allows.
    let file_limit = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gemini-balance: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, settings, file_limit)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("gemini-balance: {error:#}");
            ExitCode::FAILURE
        }
    }
}
