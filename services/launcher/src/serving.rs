//! Serving what the launcher starts: a service's gRPC routes with health (NOT_SERVING once
//! shutdown begins) and reflection, on a bound listener, drained; and `/metrics`.

use gb_runtime::grpc::{self, ServiceRoutes, service_routes};
use gb_runtime::shutdown::drained;
use gb_runtime::tasks::Tasks;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

/// A service's routes (with health and reflection), marked serving until shutdown begins, when
/// health turns NOT_SERVING so that probes stop routing to us.
pub async fn serving(
    service: &'static str,
    tasks: &Tasks,
    add: impl FnOnce(&mut tonic::service::RoutesBuilder),
) -> anyhow::Result<ServiceRoutes> {
    let routes = service_routes(add)?;
    routes
        .health
        .set_service_status(service, ServingStatus::Serving)
        .await;
    let health = routes.health.clone();
    let shutdown = tasks.shutdown().clone();
    tasks.spawn(async move {
        shutdown.cancelled().await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    });
    Ok(routes)
}

/// Serves one service's gRPC routes until shutdown and the drain are over.
pub async fn serve_grpc(
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
