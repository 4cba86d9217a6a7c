//! The physical limit of one HTTP hop on this machine: a minimal hyper reverse proxy that
//! forwards every request to the upstream over pooled keep-alive connections and streams the
//! answer back. The gateway is measured against it.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;
type Upstream = Client<HttpConnector, Incoming>;

async fn forward(
    client: Upstream,
    upstream: SocketAddr,
    mut request: Request<Incoming>,
) -> anyhow::Result<Response<BoxBody>> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    *request.uri_mut() = format!("http://{upstream}{path}").parse()?;
    let response = client.request(request).await?;
    Ok(response.map(BodyExt::boxed))
}

pub async fn serve(address: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector);
    let listener = TcpListener::bind(address).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let client = client.clone();
                async move {
                    match forward(client, upstream, request).await {
                        Ok(response) => Ok::<_, std::convert::Infallible>(response),
                        Err(_) => {
                            let empty =
                                http_body_util::Empty::new().map_err(|never| match never {});
                            let mut failed = Response::new(empty.boxed());
                            *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                            Ok(failed)
                        }
                    }
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
