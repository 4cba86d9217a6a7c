//! The chat replica's local view of the key pool: picked from on every attempt without a lock
//! held across the pick, a database query or an RPC. The keys service's `WatchPool` stream
//! keeps it current; this replica also marks keys it has just seen fail, before the keys
//! service's verdict comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct LocalKey {
    pub id: i64,
    pub value: Arc<str>,
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

pub struct LocalPool {
    keys: RwLock<Keys>,
    cursor: AtomicUsize,
    loaded: watch::Sender<bool>,
}

impl Default for LocalPool {
    fn default() -> Self {
        LocalPool {
            keys: RwLock::new(Keys::default()),
            cursor: AtomicUsize::new(0),
            loaded: watch::channel(false).0,
        }
    }
}

impl LocalPool {
    fn ring(&self) -> Arc<Vec<Arc<LocalKey>>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ring
            .clone()
    }

    /// The next key in round-robin order that may serve `model` and that this request has not
    /// tried yet.
    pub fn pick(&self, model: &str, tried: &[i64], now_ms: i64) -> Result<Arc<LocalKey>, NoKey> {
        let ring = self.ring();
        let count = ring.len();
        if count == 0 {
            return Err(NoKey::NoneUsable);
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut soonest = i64::MAX;
        let mut any_untried = false;
        for offset in 0..count {
            let key = &ring[(start + offset) % count];
            if tried.contains(&key.id) {
                continue;
            }
            any_untried = true;
            if key.usable_at(model, now_ms) {
                return Ok(key.clone());
            }
            if !key.disabled.load(Ordering::Relaxed) {
                soonest = soonest.min(key.cooling_until(model));
            }
        }
        if !any_untried {
            Err(NoKey::AllTried)
        } else if soonest < i64::MAX {
            Err(NoKey::AllCooling { until_ms: soonest })
        } else {
            Err(NoKey::NoneUsable)
        }
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
                true
            }
            pb::pool_event::Event::Upserted(key) => keys.upsert(&key),
            pb::pool_event::Event::RemovedId(id) => keys.by_id.remove(&id).is_some(),
        };
        if ring_changed {
            keys.rebuild_ring();
        }
        drop(keys);
        self.loaded.send_replace(true);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_key(id: i64, status: pb::KeyStatus, cooldown_until_ms: i64) -> pb::PoolKey {
        pb::PoolKey {
            id,
            value: format!("key-{id}"),
            status: status.into(),
            cooldown_until_ms,
            key_type: "gemini".into(),
            model_cooldowns: Vec::new(),
        }
    }

    fn pool_of(keys: Vec<pb::PoolKey>) -> LocalPool {
        let pool = LocalPool::default();
        pool.apply(pb::pool_event::Event::Snapshot(pb::PoolSnapshot { keys }));
        pool
    }

    #[test]
    fn round_robin_over_usable_keys() {
        let pool = pool_of(vec![
            pool_key(1, pb::KeyStatus::Active, 0),
            pool_key(2, pb::KeyStatus::Disabled, 0),
            pool_key(3, pb::KeyStatus::Active, 0),
        ]);
        let picks: Vec<i64> = (0..4).map(|_| pool.pick("m", &[], 0).unwrap().id).collect();
        assert_eq!(picks, vec![1, 3, 1, 3]);
    }

    #[test]
    fn cooling_keys_are_skipped_until_their_time() {
        let pool = pool_of(vec![pool_key(1, pb::KeyStatus::Active, 500)]);
        assert_eq!(
            pool.pick("m", &[], 100).err(),
            Some(NoKey::AllCooling { until_ms: 500 })
        );
        assert_eq!(pool.pick("m", &[], 500).unwrap().id, 1);
    }

    #[test]
    fn tried_keys_are_not_picked_again() {
        let pool = pool_of(vec![
            pool_key(1, pb::KeyStatus::Active, 0),
            pool_key(2, pb::KeyStatus::Active, 0),
        ]);
        assert_eq!(pool.pick("m", &[1], 0).unwrap().id, 2);
        assert_eq!(pool.pick("m", &[1, 2], 0).err(), Some(NoKey::AllTried));
    }

    #[test]
    fn events_update_the_ring() {
        let pool = pool_of(vec![pool_key(1, pb::KeyStatus::Active, 0)]);
        pool.apply(pb::pool_event::Event::Upserted(pool_key(
            1,
            pb::KeyStatus::Disabled,
            0,
        )));
        assert_eq!(pool.pick("m", &[], 0).err(), Some(NoKey::NoneUsable));
        pool.apply(pb::pool_event::Event::Upserted(pool_key(
            2,
            pb::KeyStatus::Active,
            0,
        )));
        assert_eq!(pool.pick("m", &[], 0).unwrap().id, 2);
        pool.apply(pb::pool_event::Event::RemovedId(2));
        assert!(pool.pick("m", &[], 0).is_err());
    }

    /// A key cooling for one model serves the others, and that model again at its time.
    #[test]
    fn a_model_cooldown_skips_the_key_for_that_model_alone() {
        let mut cooling = pool_key(1, pb::KeyStatus::Active, 0);
        cooling.model_cooldowns = vec![pb::ModelCooldown {
            model: "gemini-2.5-pro".into(),
            until_ms: 5_000,
        }];
        let pool = pool_of(vec![cooling, pool_key(2, pb::KeyStatus::Active, 0)]);
        for _ in 0..4 {
            assert_eq!(pool.pick("gemini-2.5-pro", &[], 100).unwrap().id, 2);
        }
        assert_eq!(
            pool.pick("gemini-2.5-pro", &[2], 100).err(),
            Some(NoKey::AllCooling { until_ms: 5_000 })
        );
        assert_eq!(pool.pick("gemini-2.5-flash", &[2], 100).unwrap().id, 1);
        assert_eq!(pool.pick("gemini-2.5-pro", &[2], 5_000).unwrap().id, 1);
        // Marked by this replica before the keys service's verdict; the verdict replaces it.
        let key = pool.pick("gemini-2.5-flash", &[2], 100).unwrap();
        key.mark_model_cooling_until("gemini-2.5-flash", 9_000);
        assert!(pool.pick("gemini-2.5-flash", &[2], 8_999).is_err());
        pool.apply(pb::pool_event::Event::Upserted(pool_key(
            1,
            pb::KeyStatus::Active,
            0,
        )));
        assert_eq!(pool.pick("gemini-2.5-flash", &[2], 100).unwrap().id, 1);
    }

    #[test]
    fn a_locally_disabled_key_is_skipped_at_once() {
        let pool = pool_of(vec![
            pool_key(1, pb::KeyStatus::Active, 0),
            pool_key(2, pb::KeyStatus::Active, 0),
        ]);
        pool.pick("m", &[], 0).unwrap().mark_disabled();
        for _ in 0..4 {
            assert_eq!(pool.pick("m", &[], 0).unwrap().id, 2);
        }
    }
}
