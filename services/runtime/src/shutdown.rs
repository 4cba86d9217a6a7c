//! One cancellation token, cancelled by SIGINT or SIGTERM; everything that must stop watches it.

use tokio_util::sync::CancellationToken;

/// A token cancelled when the process is asked to stop, and the task that listens for the
/// signal (it also ends when the token is cancelled for another reason).
pub fn on_signal() -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let listener = tokio::spawn(async move {
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("shutdown signal received");
                cancel.cancel();
            }
            _ = cancel.cancelled() => {}
        }
    });
    (token, listener)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a server until it ends, or, once `shutdown` is cancelled, for at most `limit` more:
/// open requests and streams get that long to finish.
pub async fn drained<E: Into<anyhow::Error>>(
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
