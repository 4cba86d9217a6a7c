//! The `ConfigService` gRPC contract over the stored settings.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use gb_proto::config::v1 as pb;
use gb_proto::config::v1::config_service_server::ConfigService;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

use crate::stored::StoredSettings;

pub struct ConfigGrpc {
    pub stored: Arc<StoredSettings>,
    /// Ends the watch streams at shutdown (the followers reconnect), so they never hold the
    /// drain open.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl ConfigGrpc {
    async fn listing(&self) -> Response<pb::ListConfigsResponse> {
        Response::new(pb::ListConfigsResponse {
            entries: self.stored.list().await,
        })
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::ConfigSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl ConfigService for ConfigGrpc {
    async fn list_configs(
        &self,
        _request: Request<pb::ListConfigsRequest>,
    ) -> Result<Response<pb::ListConfigsResponse>, Status> {
        Ok(self.listing().await)
    }

    async fn get_config(
        &self,
        request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::ConfigEntry>, Status> {
        Ok(Response::new(
            self.stored.get(&request.into_inner().name).await?,
        ))
    }

    async fn put_configs(
        &self,
        request: Request<pb::PutConfigsRequest>,
    ) -> Result<Response<pb::ListConfigsResponse>, Status> {
        let values = request.into_inner().values_json.into_iter().collect();
        self.stored.put(values).await?;
        Ok(self.listing().await)
    }

    async fn reset_configs(
        &self,
        request: Request<pb::ResetConfigsRequest>,
    ) -> Result<Response<pb::ListConfigsResponse>, Status> {
        self.stored.reset(&request.into_inner().names).await?;
        Ok(self.listing().await)
    }

    type WatchConfigsStream = SnapshotStream;

    async fn watch_configs(
        &self,
        _request: Request<pb::WatchConfigsRequest>,
    ) -> Result<Response<Self::WatchConfigsStream>, Status> {
        let stream = WatchStream::new(self.stored.subscribe()).map(|published| {
            Ok(pb::ConfigSnapshot {
                version: published.version,
                values: published.values.into_iter().collect(),
            })
        });
        let stream =
            futures::StreamExt::take_until(stream, self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}
