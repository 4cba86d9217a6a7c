//! Settings that change while the services run.
//!
//! Each process starts from its environment, then follows the config service's `WatchConfigs`
//! stream: every snapshot (the stored values) is laid over the environment and parsed by the
//! same code that parses the environment. Readers take the current settings per request
//! ([`LiveSettings::current`]) or keep something built from them up to date ([`LiveSettings::derive`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gb_proto::config::v1 as pb;
use gb_proto::config::v1::config_service_client::ConfigServiceClient;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::grpc::GrpcChannel;
use crate::tasks::Tasks;

/// Whether the settings changed (false once they never will again, or at shutdown).
async fn next_change(
    settings: &mut watch::Receiver<Arc<Settings>>,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        changed = settings.changed() => changed.is_ok(),
        _ = shutdown.cancelled() => false,
    }
}
use crate::settings::Settings;

#[derive(Clone)]
pub struct LiveSettings {
    sender: Arc<watch::Sender<Arc<Settings>>>,
    /// Owns the tasks that rebuild what is derived from the settings.
    tasks: Tasks,
    /// The version of the last config snapshot applied; 0 before the first.
    applied: Arc<watch::Sender<u64>>,
}

/// A value rebuilt from the settings whenever they change.
pub struct Live<T> {
    receiver: watch::Receiver<Arc<T>>,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live {
            receiver: self.receiver.clone(),
        }
    }
}

impl<T> Live<T> {
    pub fn get(&self) -> Arc<T> {
        self.receiver.borrow().clone()
    }
}

impl LiveSettings {
    pub fn new(settings: Settings, tasks: &Tasks) -> Self {
        LiveSettings {
            sender: Arc::new(watch::channel(Arc::new(settings)).0),
            tasks: tasks.clone(),
            applied: Arc::new(watch::channel(0).0),
        }
    }

    pub fn current(&self) -> Arc<Settings> {
        self.sender.borrow().clone()
    }

    /// Keeps `build(settings)` current; when a rebuild fails the previous value stays (and the
    /// failure is logged).
    pub fn derive<T, Build>(&self, what: &'static str, build: Build) -> anyhow::Result<Live<T>>
    where
        T: Send + Sync + 'static,
        Build: Fn(&Settings) -> anyhow::Result<T> + Send + 'static,
    {
        let mut settings = self.sender.subscribe();
        let first = build(&settings.borrow_and_update())?;
        let (sender, receiver) = watch::channel(Arc::new(first));
        let shutdown = self.tasks.shutdown().clone();
        self.tasks.spawn(async move {
            while next_change(&mut settings, &shutdown).await {
                let current = settings.borrow_and_update().clone();
                match build(&current) {
                    Ok(value) => {
                        sender.send_replace(Arc::new(value));
                    }
                    Err(error) => {
                        tracing::error!(what, error = %error, "a settings change could not be applied; the previous settings stay")
                    }
                }
            }
        });
        Ok(Live { receiver })
    }

    /// Runs `action(before, after)` each time `key` of the settings changes.
    pub fn on_change<K, Key, Action>(&self, key: Key, mut action: Action)
    where
        K: PartialEq + Clone + Send + Sync + 'static,
        Key: Fn(&Settings) -> K + Send + 'static,
        Action: FnMut(K, K, Arc<Settings>) + Send + 'static,
    {
        let mut settings = self.sender.subscribe();
        let mut last = key(&settings.borrow_and_update());
        let shutdown = self.tasks.shutdown().clone();
        self.tasks.spawn(async move {
            while next_change(&mut settings, &shutdown).await {
                let current = settings.borrow_and_update().clone();
                let next = key(&current);
                if next != last {
                    let before = std::mem::replace(&mut last, next.clone());
                    action(before, next, current);
                }
            }
        });
    }

    /// Follows the config service from now on, in a task of these settings' owner.
    pub fn follow_config_in_background(&self, channel: GrpcChannel) {
        let shutdown = self.tasks.shutdown().clone();
        self.tasks
            .spawn(self.clone().follow_config(channel, shutdown));
    }

    /// Waits (at most `limit`) until a config snapshot has been applied.
    pub async fn wait_for_config(&self, limit: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(limit, applied.wait_for(|version| *version > 0))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Follows the config service until shutdown, reconnecting after a lost stream.
    pub async fn follow_config(self, channel: GrpcChannel, shutdown: CancellationToken) {
        let client = ConfigServiceClient::new(channel);
        crate::grpc::follow_stream(
            "settings",
            shutdown,
            || {
                let mut client = client.clone();
                async move { client.watch_configs(pb::WatchConfigsRequest {}).await }
            },
            |snapshot| self.apply_snapshot(snapshot),
        )
        .await;
    }

    fn apply_snapshot(&self, snapshot: pb::ConfigSnapshot) {
        let values: HashMap<String, String> = snapshot.values.into_iter().collect();
        // The config service validated the values against its own environment; one that this
        // process's environment makes invalid is left out here, named, and the rest apply.
        let (next, refused) = self.current().with_applicable_overrides(&values);
        for error in &refused {
            tracing::error!(version = snapshot.version, setting = error.name, %error, "a stored setting cannot apply in this process: its environment's value stays");
        }
        self.sender.send_replace(Arc::new(next));
        tracing::debug!(version = snapshot.version, "settings applied");
        self.applied.send_replace(snapshot.version.max(1));
    }
}
