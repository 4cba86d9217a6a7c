//! Serves the gateway's router on an already-bound listener until shutdown, then lets open
//! requests and streams finish for at most the drain limit.

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::GatewayState;

/// Serves HTTP until `shutdown`, then drains for at most `drain_limit`.
pub async fn serve(
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
    gb_runtime::shutdown::drained(serving, &shutdown, drain_limit).await
}
