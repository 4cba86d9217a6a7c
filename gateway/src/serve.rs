//! Serves the gateway's router on an already-bound listener until shutdown, then lets open
//! requests and streams finish for at most the drain limit.
//!
//! Hostile connections are held off here, below the router: a client gets
//! `HEADER_READ_TIMEOUT` to send its headers (slowloris) and an idle kept-alive connection is
//! closed after as long; past `MAX_CONNECTIONS` open connections a new one is closed at once
//! (counted in `http_connections_refused_total`), so that the process never runs out of file
//! descriptors and the clients already connected keep being served.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::state::GatewayState;

/// What a connection may cost: set from the gateway's settings at start.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves HTTP until `shutdown`, then drains for at most `drain_limit`.
pub async fn serve(
    state: GatewayState,
    listener: TcpListener,
    shutdown: CancellationToken,
    drain_limit: Duration,
    limits: ConnectionLimits,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, max_connections = limits.max_connections, "gateway listening");
    // Made into a service once: the route table is shared by every connection, not rebuilt
    // (~60 KB a connection, which 10,000 open streams multiply).
    let service = TowerToHyperService::new(crate::router(state));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // Connections that have sent their first byte, back from the tasks that waited for it.
    let (spoke, mut speaking) = tokio::sync::mpsc::channel(256);
    let waiting = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, permit) = tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors or a connection reset while queued: go on.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = open.clone().try_acquire_owned() else {
                    metrics::counter!("http_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                // Until its first byte, hyper waits for a connection to say which protocol
                // it speaks, with no timer of its own: a silent connection is dropped here.
                let spoke = spoke.clone();
                let first_byte_limit = limits.header_read_timeout;
                let stopping = shutdown.clone();
                waiting.spawn(async move {
                    let mut first = [0u8; 1];
                    let peeked = tokio::select! {
                        peeked = tokio::time::timeout(first_byte_limit, stream.peek(&mut first)) => peeked,
                        _ = stopping.cancelled() => return,
                    };
                    if let Ok(Ok(read)) = peeked
                        && read > 0
                    {
                        let _ = spoke.send((stream, permit)).await;
                    }
                });
                continue;
            }
            Some(ready) = speaking.recv() => ready,
            _ = shutdown.cancelled() => break,
        };
        // Each request carries its connection's peer (the console limits failed logins per
        // client address).
        let peer = crate::console::ClientAddr(stream.peer_addr().ok().map(|peer| peer.ip()));
        let shared = service.clone();
        let with_peer = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer);
                hyper::service::Service::call(&shared, request)
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), with_peer)
            .into_owned();
        let connection = graceful.watch(connection);
        // Owned by `graceful`, which the drain below waits for.
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    // Connections that have not said a word by now are not served.
    drop(speaking);
    waiting.close();
    waiting.wait().await;
    drop(listener);
    tracing::info!(
        limit_seconds = drain_limit.as_secs_f64(),
        "draining open requests"
    );
    if tokio::time::timeout(drain_limit, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached: requests still open were cut");
    }
    Ok(())
}
