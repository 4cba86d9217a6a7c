//! The `KeysService` gRPC contract over the pool.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_server::KeysService;
use gb_proto::keys::{KeysError, KeysResult};
use gb_runtime::now_ms;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use crate::pool::{KeyPool, Selector};
use crate::state::KeyEntry;
use crate::verify::Verifier;

pub struct KeysGrpc {
    pub pool: Arc<KeyPool>,
    pub client_tokens: Arc<crate::client_tokens::ClientTokens>,
    pub verifier: gb_runtime::live::Live<Verifier>,
    /// Owns the tasks that feed the pool streams; they end at shutdown, so that watchers move
    /// to another replica at once instead of holding the drain open.
    pub tasks: gb_runtime::tasks::Tasks,
}

impl KeysGrpc {
    fn select(&self, selector: Option<&pb::KeySelector>) -> KeysResult<KeyEntry> {
        let selector = Selector::from_proto(selector).ok_or(KeysError::KeyRequired)?;
        self.pool.find(&selector).ok_or(KeysError::NoSuchKey)
    }
}

type PoolEventStream = Pin<Box<dyn Stream<Item = Result<pb::PoolEvent, Status>> + Send>>;
type ClientTokenStream =
    Pin<Box<dyn Stream<Item = Result<pb::ClientTokenSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl KeysService for KeysGrpc {
    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let wanted = request.into_inner().statuses;
        let now = now_ms();
        let keys = self
            .pool
            .list()
            .iter()
            .map(|entry| entry.to_admin_key(now))
            .filter(|key| wanted.is_empty() || wanted.contains(&key.status))
            .collect();
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let entry = self.select(request.get_ref().key.as_ref())?;
        Ok(Response::new(entry.to_admin_key(now_ms())))
    }

    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let request = request.into_inner();
        let value = request.key_value.trim();
        if value.is_empty() || value.chars().any(char::is_whitespace) || value.len() > 512 {
            return Err(KeysError::InvalidKeyValue.into());
        }
        let key_type = match request.key_type.trim() {
            "" => "gemini",
            other => other,
        };
        match self
            .pool
            .create(value, key_type)
            .await
            .map_err(KeysError::from)?
        {
            Some(entry) => Ok(Response::new(entry.to_admin_key(now_ms()))),
            None => Err(KeysError::AlreadyInPool.into()),
        }
    }

    async fn delete_key(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Result<Response<pb::DeleteKeyResponse>, Status> {
        let entry = self.select(request.get_ref().key.as_ref())?;
        let deleted = self.pool.delete(entry.id).await.map_err(KeysError::from)?;
        Ok(Response::new(pb::DeleteKeyResponse { deleted }))
    }

    type WatchPoolStream = PoolEventStream;

    async fn watch_pool(
        &self,
        _request: Request<pb::WatchPoolRequest>,
    ) -> Result<Response<Self::WatchPoolStream>, Status> {
        let pool = self.pool.clone();
        let (snapshot, mut receiver) = pool.subscribe();
        let shutdown = self.tasks.shutdown().clone();
        let stream = async_stream(&self.tasks, move |sender| async move {
            let first = pb::PoolEvent {
                event: Some(pb::pool_event::Event::Snapshot(snapshot)),
            };
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    _ = shutdown.cancelled() => return,
                };
                let event = match received {
                    Ok(event) => event,
                    // The watcher fell behind: start it over from a fresh snapshot.
                    Err(RecvError::Lagged(_)) => {
                        let (snapshot, fresh) = pool.subscribe();
                        receiver = fresh;
                        pb::PoolEvent {
                            event: Some(pb::pool_event::Event::Snapshot(snapshot)),
                        }
                    }
                    Err(RecvError::Closed) => return,
                };
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report_outcomes(
        &self,
        request: Request<pb::ReportOutcomesRequest>,
    ) -> Result<Response<pb::ReportOutcomesResponse>, Status> {
        let request = request.into_inner();
        let applied = self
            .pool
            .apply_outcomes(&request.reporter, &request.outcomes)
            .await
            .map_err(KeysError::from)?;
        Ok(Response::new(pb::ReportOutcomesResponse { applied }))
    }

    async fn verify_keys(
        &self,
        request: Request<pb::VerifyKeysRequest>,
    ) -> Result<Response<pb::VerifyKeysResponse>, Status> {
        let selectors = request.into_inner().keys;
        let mut results = Vec::new();
        let mut to_check = Vec::new();
        let mut checked_selectors = Vec::new();
        if selectors.is_empty() {
            for entry in self.pool.list() {
                checked_selectors.push(pb::KeySelector {
                    selector: Some(pb::key_selector::Selector::Id(entry.id)),
                });
                to_check.push(entry);
            }
        }
        for selector in selectors {
            match Selector::from_proto(Some(&selector)).and_then(|known| self.pool.find(&known)) {
                Some(entry) => {
                    checked_selectors.push(selector);
                    to_check.push(entry);
                }
                None => results.push(pb::VerifyResult {
                    key: Some(selector),
                    found: false,
                    error: "no such key".into(),
                    ..Default::default()
                }),
            }
        }
        let checked = self.verifier.get().check(&self.pool, to_check).await;
        for check in checked {
            let selector = checked_selectors
                .iter()
                .find(|selector| match &selector.selector {
                    Some(pb::key_selector::Selector::Id(id)) => *id == check.entry.id,
                    Some(pb::key_selector::Selector::Value(value)) => **value == *check.entry.value,
                    None => false,
                })
                .cloned();
            results.push(pb::VerifyResult {
                key: selector,
                id: check.entry.id,
                masked_value: gb_runtime::secrets::mask_key(&check.entry.value),
                valid: check.failure.is_none(),
                error: check
                    .failure
                    .as_ref()
                    .map(|failure| failure.message())
                    .unwrap_or_default(),
                http_status: check
                    .failure
                    .as_ref()
                    .map_or(200, |failure| u32::from(failure.status)),
                found: true,
            });
        }
        Ok(Response::new(pb::VerifyKeysResponse { results }))
    }

    async fn reset_keys(
        &self,
        request: Request<pb::ResetKeysRequest>,
    ) -> Result<Response<pb::ResetKeysResponse>, Status> {
        let request = request.into_inner();
        let mut ids = Vec::new();
        let mut not_found = Vec::new();
        if request.all {
            let now = now_ms();
            ids.extend(
                self.pool
                    .list()
                    .iter()
                    .filter(|entry| {
                        request.statuses.is_empty()
                            || request
                                .statuses()
                                .any(|status| status == entry.status_at(now))
                    })
                    .map(|entry| entry.id),
            );
        }
        for selector in request.keys {
            match Selector::from_proto(Some(&selector)).and_then(|known| self.pool.find(&known)) {
                Some(entry) => ids.push(entry.id),
                None => not_found.push(selector),
            }
        }
        let reset = self.pool.reset(&ids).await.map_err(KeysError::from)?;
        Ok(Response::new(pb::ResetKeysResponse { reset, not_found }))
    }

    async fn create_client_token(
        &self,
        request: Request<pb::ClientTokenSpec>,
    ) -> Result<Response<pb::IssuedClientToken>, Status> {
        Ok(Response::new(
            self.client_tokens.create(request.get_ref()).await?,
        ))
    }

    async fn list_client_tokens(
        &self,
        _request: Request<pb::ListClientTokensRequest>,
    ) -> Result<Response<pb::ListClientTokensResponse>, Status> {
        Ok(Response::new(pb::ListClientTokensResponse {
            tokens: self.client_tokens.list(),
        }))
    }

    async fn update_client_token(
        &self,
        request: Request<pb::UpdateClientTokenRequest>,
    ) -> Result<Response<pb::ClientToken>, Status> {
        Ok(Response::new(
            self.client_tokens.update(request.get_ref()).await?,
        ))
    }

    async fn delete_client_token(
        &self,
        request: Request<pb::ClientTokenId>,
    ) -> Result<Response<pb::DeleteClientTokenResponse>, Status> {
        let deleted = self.client_tokens.delete(request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteClientTokenResponse { deleted }))
    }

    async fn rotate_client_token(
        &self,
        request: Request<pb::ClientTokenId>,
    ) -> Result<Response<pb::IssuedClientToken>, Status> {
        Ok(Response::new(
            self.client_tokens.rotate(request.get_ref().id).await?,
        ))
    }

    type WatchClientTokensStream = ClientTokenStream;

    async fn watch_client_tokens(
        &self,
        _request: Request<pb::WatchClientTokensRequest>,
    ) -> Result<Response<Self::WatchClientTokensStream>, Status> {
        let mut tokens = self.client_tokens.subscribe();
        let shutdown = self.tasks.shutdown().clone();
        let stream = async_stream(&self.tasks, move |sender| async move {
            loop {
                let snapshot = pb::ClientTokenSnapshot {
                    tokens: tokens.borrow_and_update().to_vec(),
                };
                if sender.send(Ok(snapshot)).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = tokens.changed() => if changed.is_err() { return },
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_usage(
        &self,
        _request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::GetUsageResponse>, Status> {
        Ok(Response::new(pb::GetUsageResponse {
            usage: self.pool.usage_stats(),
        }))
    }
}

/// A stream fed by a task, for server streams whose items come from a loop.
fn async_stream<T, F, Fut>(
    tasks: &gb_runtime::tasks::Tasks,
    producer: F,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tasks.spawn(producer(sender));
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}
