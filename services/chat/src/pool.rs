//! The chat replica's local view of the key pool: picked from on every attempt without a lock
//! held across the pick, a database query or an RPC. The keys service's `WatchPool` stream
//! keeps it current; this replica also marks keys it has just seen fail, before the keys
//! service's verdict comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;
use gb_runtime::settings::{KeyModelLimits, TimeZone};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::limits::KeyUsage;

pub struct LocalKey {
    pub id: i64,
    pub value: Arc<str>,
    /// `free`, `paid`, … (`KEY_MODEL_LIMITS` may set limits per type).
    key_type: Arc<str>,
    /// What the key has used of the models it serves under a limit.
    usage: KeyUsage,
    disabled: AtomicBool,
    cooldown_until_ms: AtomicI64,
    /// Transient failures in a row seen by this replica, so that it stops picking the key at
    /// `MAX_FAILURES` before the keys service's verdict comes back.
    failures_in_row: AtomicU32,
    /// The models the key rests for (it spent their quota), until when; read on a pick only
    /// when `any_model_cooling` says there are some, so that the usual pick takes no lock.
    model_cooldowns: RwLock<Vec<(Arc<str>, i64)>>,
    any_model_cooling: AtomicBool,
}

impl LocalKey {
    /// A key that is not in the pool (`PAID_KEY`): never picked, its outcomes not reported.
    pub fn outside_pool(value: &str) -> Self {
        LocalKey {
            id: 0,
            value: value.into(),
            key_type: "".into(),
            usage: KeyUsage::default(),
            disabled: AtomicBool::new(false),
            cooldown_until_ms: AtomicI64::new(0),
            failures_in_row: AtomicU32::new(0),
            model_cooldowns: RwLock::new(Vec::new()),
            any_model_cooling: AtomicBool::new(false),
        }
    }

    fn new(key: &pb::PoolKey) -> Self {
        let local = LocalKey {
            id: key.id,
            value: key.value.as_str().into(),
            key_type: key.key_type.as_str().into(),
            usage: KeyUsage::default(),
            disabled: AtomicBool::new(key.status() == pb::KeyStatus::Disabled),
            cooldown_until_ms: AtomicI64::new(key.cooldown_until_ms),
            failures_in_row: AtomicU32::new(0),
            model_cooldowns: RwLock::new(Vec::new()),
            any_model_cooling: AtomicBool::new(false),
        };
        local.set_model_cooldowns(&key.model_cooldowns);
        local
    }

    pub fn in_pool(&self) -> bool {
        self.id > 0
    }

    /// Until when the key may not serve `model` (0: it may).
    fn model_cooling_until(&self, model: &str) -> i64 {
        if !self.any_model_cooling.load(Ordering::Relaxed) {
            return 0;
        }
        self.model_cooldowns
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(cooling, _)| **cooling == *model)
            .map_or(0, |(_, until_ms)| *until_ms)
    }

    /// Until when the key may not serve `model`, whether for the key or for the model.
    fn cooling_until(&self, model: &str) -> i64 {
        self.cooldown_until_ms
            .load(Ordering::Relaxed)
            .max(self.model_cooling_until(model))
    }

    fn usable_at(&self, model: &str, now_ms: i64) -> bool {
        !self.disabled.load(Ordering::Relaxed) && self.cooling_until(model) <= now_ms
    }

    /// The keys service's model cooldowns replace this replica's.
    fn set_model_cooldowns(&self, cooldowns: &[pb::ModelCooldown]) {
        let mut models = self
            .model_cooldowns
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *models = cooldowns
            .iter()
            .map(|cooldown| (Arc::from(cooldown.model.as_str()), cooldown.until_ms))
            .collect();
        self.any_model_cooling
            .store(!models.is_empty(), Ordering::Relaxed);
    }

    /// Rests the key for `model` alone until `until_ms` (this replica saw its quota spent).
    pub fn mark_model_cooling_until(&self, model: &str, until_ms: i64) {
        let mut models = self
            .model_cooldowns
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match models.iter_mut().find(|(cooling, _)| **cooling == *model) {
            Some((_, until)) => *until = (*until).max(until_ms),
            None => models.push((model.into(), until_ms)),
        }
        self.any_model_cooling.store(true, Ordering::Relaxed);
    }

    pub fn mark_disabled(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }

    /// Counts a transient failure; true when it makes `max_failures` in a row.
    pub fn count_failure(&self, max_failures: u32) -> bool {
        self.failures_in_row.fetch_add(1, Ordering::Relaxed) + 1 >= max_failures
    }

    pub fn count_success(&self) {
        self.failures_in_row.store(0, Ordering::Relaxed);
    }

    pub fn mark_cooling_until(&self, until_ms: i64) {
        self.cooldown_until_ms
            .fetch_max(until_ms, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Keys {
    by_id: HashMap<i64, Arc<LocalKey>>,
    /// The keys not disabled, in id order: the round-robin ring.
    ring: Arc<Vec<Arc<LocalKey>>>,
}

impl Keys {
    fn rebuild_ring(&mut self) {
        let mut ring: Vec<Arc<LocalKey>> = self
            .by_id
            .values()
            .filter(|key| !key.disabled.load(Ordering::Relaxed))
            .cloned()
            .collect();
        ring.sort_by_key(|key| key.id);
        self.ring = Arc::new(ring);
    }

    fn upsert(&mut self, key: &pb::PoolKey) -> bool {
        let disabled = key.status() == pb::KeyStatus::Disabled;
        if let Some(known) = self.by_id.get(&key.id)
            && *known.value == *key.value
            && *known.key_type == *key.key_type
        {
            let was_disabled = known.disabled.swap(disabled, Ordering::Relaxed);
            if was_disabled && !disabled {
                // Back in service (reset or checked): its count starts over.
                known.failures_in_row.store(0, Ordering::Relaxed);
            }
            known
                .cooldown_until_ms
                .store(key.cooldown_until_ms, Ordering::Relaxed);
            known.set_model_cooldowns(&key.model_cooldowns);
            return was_disabled != disabled;
        }
        self.by_id.insert(key.id, Arc::new(LocalKey::new(key)));
        true
    }
}

/// Why no key could be picked.
#[derive(Debug, PartialEq, Eq)]
pub enum NoKey {
    /// The pool is empty or every key is disabled.
    NoneUsable,
    /// Every usable key is cooling down; the first is free again at this time.
    AllCooling { until_ms: i64 },
    /// Every usable key was already tried for this request.
    AllTried,
}

/// `KEY_MODEL_LIMITS`, and where the quota day ends (`QUOTA_RESET_TIMEZONE`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolLimits {
    pub table: KeyModelLimits,
    pub reset: TimeZone,
}

pub struct LocalPool {
    keys: RwLock<Keys>,
    cursor: AtomicUsize,
    loaded: watch::Sender<bool>,
    limits: RwLock<Arc<PoolLimits>>,
    /// This replica's name in its outcome reports.
    reporter: Arc<str>,
    /// The last of this replica's outcome reports that the keys service's sums include.
    acked: AtomicU64,
    /// The end of the current quota day, kept so that a pick rarely asks the time zone.
    day_end_ms: AtomicI64,
}

impl Default for LocalPool {
    fn default() -> Self {
        LocalPool {
            keys: RwLock::new(Keys::default()),
            cursor: AtomicUsize::new(0),
            loaded: watch::channel(false).0,
            limits: RwLock::new(Arc::default()),
            reporter: uuid::Uuid::new_v4().simple().to_string().into(),
            acked: AtomicU64::new(0),
            day_end_ms: AtomicI64::new(0),
        }
    }
}

impl LocalPool {
    /// A key of the pool by id (disabled or not), while it is in the pool.
    pub fn key(&self, id: i64) -> Option<Arc<LocalKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .get(&id)
            .cloned()
    }

    fn ring(&self) -> Arc<Vec<Arc<LocalKey>>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ring
            .clone()
    }

    /// This replica's name in its outcome reports.
    pub fn reporter(&self) -> &str {
        &self.reporter
    }

    /// New `KEY_MODEL_LIMITS` or `QUOTA_RESET_TIMEZONE`; they apply from the next pick.
    pub fn set_limits(&self, limits: PoolLimits) {
        *self
            .limits
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(limits);
        self.day_end_ms.store(0, Ordering::Relaxed);
    }

    /// Rebuilds the ring after this replica disabled a key on its own.
    pub fn refresh(&self) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rebuild_ring();
    }

    pub fn apply(&self, event: pb::pool_event::Event) {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ring_changed = match event {
            pb::pool_event::Event::Snapshot(snapshot) => {
                let previous = std::mem::take(&mut keys.by_id);
                for key in &snapshot.keys {
                    if let Some(known) = previous.get(&key.id) {
                        keys.by_id.insert(key.id, known.clone());
                    }
                    keys.upsert(key);
                }
                if let Some(usage) = &snapshot.usage {
                    self.apply_usage(&keys, usage);
                }
                true
            }
            pb::pool_event::Event::Upserted(key) => keys.upsert(&key),
            pb::pool_event::Event::RemovedId(id) => keys.by_id.remove(&id).is_some(),
            pb::pool_event::Event::Usage(usage) => {
                self.apply_usage(&keys, &usage);
                false
            }
        };
        if ring_changed {
            keys.rebuild_ring();
        }
        drop(keys);
        self.loaded.send_replace(true);
    }

    /// Every replica's usage as the keys service sums it, and which of this replica's reports
    /// the sums include.
    fn apply_usage(&self, keys: &Keys, update: &pb::UsageUpdate) {
        for shared in &update.usage {
            if let Some(key) = keys.by_id.get(&shared.key_id) {
                key.usage.apply_shared(shared);
            }
        }
        if let Some(applied) = update.applied.get(&*self.reporter) {
            self.acked.fetch_max(*applied, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first snapshot has arrived, or `limit` has passed; true when loaded.
    pub async fn wait_loaded(&self, limit: Duration) -> bool {
        let mut loaded = self.loaded.subscribe();
        tokio::time::timeout(limit, loaded.wait_for(|loaded| *loaded))
            .await
            .is_ok_and(|result| result.is_ok())
    }
}

/// Follows the keys service's pool stream for as long as the process runs, reconnecting with
/// backoff; each reconnection starts from a full snapshot.
pub async fn follow_pool(
    pool: Arc<LocalPool>,
    client: KeysServiceClient<GrpcChannel>,
    shutdown: CancellationToken,
) {
    gb_runtime::grpc::follow_stream(
        "key pool",
        shutdown,
        || {
            let mut client = client.clone();
            async move { client.watch_pool(pb::WatchPoolRequest {}).await }
        },
        |message: pb::PoolEvent| {
            if let Some(event) = message.event {
                pool.apply(event);
            }
        },
    )
    .await;
}

mod pick;
#[cfg(test)]
mod tests;

pub use pick::Picked;
