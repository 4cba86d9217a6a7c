//! Logs and traces: `tracing` with a text or JSON formatter, and OpenTelemetry export over OTLP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard `OTEL_*` variables apply). The W3C
//! trace-context propagator is installed so that gRPC metadata carries the trace between services.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::settings::Settings;

/// Flushes and stops the trace exporter when dropped (after everything else has stopped).
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "trace exporter did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber. `service_name` is used when `OTEL_SERVICE_NAME` is not set.
/// Must run inside the Tokio runtime (the OTLP exporter needs it).
pub fn init(settings: &Settings, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&settings.shared.log_level)
        .map_err(|error| anyhow::anyhow!("setting LOG_LEVEL: {error}"))?;
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(otlp_provider(service_name)?),
        _ => None,
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("gemini-balance"))
    });
    let (filter, handle) = reload::Layer::new(filter);
    let _ = LEVEL.set(handle);
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    if settings.shared.log_format == crate::settings::LogFormat::Json {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init()?;
    } else {
        // Colour only on a terminal: a file or a pipe gets plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(ansi))
            .try_init()?;
    }
    Ok(TelemetryGuard { provider })
}

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Applies a new `LOG_LEVEL` to this process's logs (a no-op where [`init`] did not run).
pub fn set_log_level(level: &str) {
    let Some(handle) = LEVEL.get() else {
        return;
    };
    match EnvFilter::try_new(level) {
        Ok(filter) => match handle.reload(filter) {
            Ok(()) => tracing::info!(level, "log level changed"),
            Err(error) => tracing::warn!(%error, "log level not changed"),
        },
        Err(error) => tracing::warn!(level, %error, "LOG_LEVEL rejected"),
    }
}

/// Follows `LOG_LEVEL` in the live settings.
pub fn follow_log_level(live: &crate::live::LiveSettings) {
    live.on_change(
        |settings| settings.shared.log_level.clone(),
        |_, level, _| set_log_level(&level),
    );
}

fn otlp_provider(service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}
