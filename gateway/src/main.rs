//! `gemini-balance`: with no argument, every service in one process; with `gateway`, `chat` or
//! `keys`, that one service on its own address. Settings come from the environment and `.env`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gb_gateway::launcher;
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
    /// The HTTP front (GATEWAY_ADDR, default 0.0.0.0:8000); reaches CHAT_URL and KEYS_URL.
    Gateway,
    /// The chat service over gRPC (CHAT_ADDR, default 0.0.0.0:50051); reaches KEYS_URL.
    Chat,
    /// The keys service over gRPC (KEYS_ADDR, default 0.0.0.0:50052); owns the database.
    Keys,
}

async fn bind(address: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("setting {setting}: cannot listen on {address}: {error}"))
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let service_name = match cli.service {
        None => "gemini-balance",
        Some(Service::Gateway) => "gemini-balance-gateway",
        Some(Service::Chat) => "gemini-balance-chat",
        Some(Service::Keys) => "gemini-balance-keys",
    };
    let _telemetry = gb_runtime::telemetry::init(&settings, service_name)?;
    tracing::info!(?settings, "starting {service_name}");
    let shutdown = gb_runtime::shutdown::on_signal();
    match cli.service {
        None => {
            let listener = bind(settings.gateway_addr, "GATEWAY_ADDR").await?;
            launcher::run_all_in_one(settings, listener, shutdown).await
        }
        Some(Service::Gateway) => {
            let listener = bind(settings.gateway_addr, "GATEWAY_ADDR").await?;
            launcher::run_gateway(settings, listener, shutdown).await
        }
        Some(Service::Chat) => {
            let listener = bind(settings.chat_addr, "CHAT_ADDR").await?;
            launcher::run_chat(settings, listener, shutdown).await
        }
        Some(Service::Keys) => {
            let listener = bind(settings.keys_addr, "KEYS_ADDR").await?;
            launcher::run_keys(settings, listener, shutdown).await
        }
    }
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
    match runtime.block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("gemini-balance: {error:#}");
            ExitCode::FAILURE
        }
    }
}
