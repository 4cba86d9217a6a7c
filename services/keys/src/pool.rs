//! The authoritative key pool: every key's state in memory, written through to the database,
//! and pushed to the chat replicas as a snapshot followed by one event per visible change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use gb_proto::keys::v1 as pb;
use gb_runtime::database::{Database, DbError};
use gb_runtime::secrets::KeyCipher;
use tokio::sync::broadcast;

use crate::state::{Change, KeyEntry};
use crate::store;
use crate::usage::UsageBook;

const EVENT_BUFFER: usize = 4096;

#[derive(Default)]
struct Entries {
    by_id: BTreeMap<i64, KeyEntry>,
    /// Fingerprint → id, to find a key by its value.
    by_fingerprint: HashMap<String, i64>,
}

pub struct KeyPool {
    db: Database,
    cipher: KeyCipher,
    /// `MAX_FAILURES`, changeable while running.
    max_failures: std::sync::atomic::AtomicU32,
    entries: Mutex<Entries>,
    /// Serialises write-backs so that the database sees states in the order memory did.
    writer: tokio::sync::Mutex<()>,
    events: broadcast::Sender<pb::PoolEvent>,
    /// Every key's use per model, summed over all chat replicas' reports.
    usage: Mutex<UsageBook>,
    /// `KEY_MODEL_LIMITS`, for the statistics.
    limits: Mutex<gb_runtime::settings::KeyModelLimits>,
}

/// How a key is named by a caller.
#[derive(Clone, Debug)]
pub enum Selector {
    Id(i64),
    Value(String),
}

impl Selector {
    pub fn from_proto(selector: Option<&pb::KeySelector>) -> Option<Self> {
        match selector?.selector.as_ref()? {
            pb::key_selector::Selector::Id(id) => Some(Selector::Id(*id)),
            pb::key_selector::Selector::Value(value) => Some(Selector::Value(value.clone())),
        }
    }
}

impl KeyPool {
    pub async fn open(
        db: Database,
        cipher: KeyCipher,
        max_failures: u32,
    ) -> Result<Arc<Self>, DbError> {
        let mut entries = Entries::default();
        for entry in store::load_all(&db, &cipher).await? {
            entries
                .by_fingerprint
                .insert(cipher.fingerprint(&entry.value), entry.id);
            entries.by_id.insert(entry.id, entry);
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Arc::new(KeyPool {
            db,
            cipher,
            max_failures: std::sync::atomic::AtomicU32::new(max_failures.max(1)),
            entries: Mutex::new(entries),
            writer: tokio::sync::Mutex::new(()),
            events,
            usage: Mutex::default(),
            limits: Mutex::default(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent data (every mutation is one step).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn list(&self) -> Vec<KeyEntry> {
        self.lock().by_id.values().cloned().collect()
    }

    pub fn find(&self, selector: &Selector) -> Option<KeyEntry> {
        let entries = self.lock();
        let id = match selector {
            Selector::Id(id) => *id,
            Selector::Value(value) => *entries
                .by_fingerprint
                .get(&self.cipher.fingerprint(value))?,
        };
        entries.by_id.get(&id).cloned()
    }

    /// Stores a new key; `Ok(None)` when the value is already in the pool.
    pub async fn create(&self, value: &str, key_type: &str) -> Result<Option<KeyEntry>, DbError> {
        let _writing = self.writer.lock().await;
        let Some(entry) = store::insert(&self.db, &self.cipher, value, key_type).await? else {
            return Ok(None);
        };
        {
            let mut entries = self.lock();
            entries
                .by_fingerprint
                .insert(self.cipher.fingerprint(value), entry.id);
            entries.by_id.insert(entry.id, entry.clone());
        }
        self.publish(pb::pool_event::Event::Upserted(entry.to_pool_key()));
        Ok(Some(entry))
    }

    /// Adds the values not yet stored (the start-up import of `API_KEYS`); returns how many.
    pub async fn import(&self, values: &[String]) -> Result<usize, DbError> {
        let mut added = 0;
        for value in values {
            if self.find(&Selector::Value(value.clone())).is_some() {
                continue;
            }
            if self.create(value, "gemini").await?.is_some() {
                added += 1;
            }
        }
        Ok(added)
    }

    /// A new `MAX_FAILURES`; it applies from the next failure on.
    pub fn set_max_failures(&self, max_failures: u32) {
        self.max_failures
            .store(max_failures.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Applies a change of `API_KEYS`: the values that appeared are added, those that
    /// disappeared are removed (keys added through the API stay). Returns (added, removed).
    pub async fn apply_key_list(
        &self,
        before: &[String],
        after: &[String],
    ) -> Result<(usize, usize), DbError> {
        let added = self.import(after).await?;
        let mut removed = 0;
        for value in before.iter().filter(|value| !after.contains(value)) {
            if let Some(entry) = self.find(&Selector::Value(value.clone()))
                && self.delete(entry.id).await?
            {
                removed += 1;
            }
        }
        Ok((added, removed))
    }

    pub async fn delete(&self, id: i64) -> Result<bool, DbError> {
        let _writing = self.writer.lock().await;
        let deleted = store::delete(&self.db, id).await?;
        {
            let mut entries = self.lock();
            entries.by_id.remove(&id);
            entries.by_fingerprint.retain(|_, known| *known != id);
        }
        self.usage_book().remove_key(id);
        if deleted {
            self.publish(pb::pool_event::Event::RemovedId(id));
        }
        Ok(deleted)
    }

    /// The current pool and a receiver of every change after it, taken atomically.
    pub fn subscribe(&self) -> (pb::PoolSnapshot, broadcast::Receiver<pb::PoolEvent>) {
        let limits = self.limits();
        let entries = self.lock();
        // Usage updates are sent under this lock: none is missed or seen twice.
        let usage = self.usage_book();
        let receiver = self.events.subscribe();
        let snapshot = pb::PoolSnapshot {
            keys: entries.by_id.values().map(KeyEntry::to_pool_key).collect(),
            usage: Some(usage.full(|key_id, model| limited(&limits, &entries, key_id, model))),
        };
        (snapshot, receiver)
    }

    fn limits(&self) -> gb_runtime::settings::KeyModelLimits {
        self.limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn usage_book(&self) -> MutexGuard<'_, UsageBook> {
        // Taken after `entries` where both are held.
        self.usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// New `KEY_MODEL_LIMITS` (shown beside the usage) and `QUOTA_RESET_TIMEZONE`.
    pub fn set_usage_settings(
        &self,
        limits: gb_runtime::settings::KeyModelLimits,
        reset: gb_runtime::settings::TimeZone,
    ) {
        *self
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limits;
        let mut usage = self.usage_book();
        usage.set_reset(reset);
        usage.mark_all_changed();
    }

    /// Sends the chat replicas the usage under a limit that changed since the last call, if any.
    pub fn publish_usage(&self) {
        let limits = self.limits();
        let entries = self.lock();
        let mut usage = self.usage_book();
        let wanted = |key_id: i64, model: &str| limited(&limits, &entries, key_id, model);
        if let Some(update) = usage.take_update(gb_runtime::now_ms(), wanted) {
            let _ = self.events.send(pb::PoolEvent {
                event: Some(pb::pool_event::Event::Usage(update)),
            });
        }
    }

    /// Each key's use of each model against its limits, for the statistics.
    pub fn usage_stats(&self) -> Vec<pb::KeyModelUsageStat> {
        let now = gb_runtime::now_ms();
        let pairs = self.usage_book().pairs();
        let limits = self.limits();
        let entries = self.lock();
        pairs
            .into_iter()
            .filter_map(|(key_id, model, usage)| {
                let entry = entries.by_id.get(&key_id)?;
                let (requests_minute, tokens_minute, requests_day, tokens_day) = usage.totals(now);
                let limit = limits
                    .limit_for(&entry.key_type, &model)
                    .unwrap_or_default();
                Some(pb::KeyModelUsageStat {
                    key_id,
                    masked_value: gb_runtime::secrets::mask_key(&entry.value),
                    key_type: entry.key_type.clone(),
                    model,
                    requests_last_minute: requests_minute,
                    tokens_last_minute: tokens_minute,
                    requests_today: requests_day,
                    tokens_today: tokens_day,
                    rpm: limit.rpm,
                    tpm: limit.tpm,
                    rpd: limit.rpd,
                    day_end_ms: usage.day_end_ms(),
                })
            })
            .collect()
    }

    /// Applies a batch of outcomes (from the chat replica `reporter`) and writes the result
    /// back once.
    pub async fn apply_outcomes(
        &self,
        reporter: &str,
        outcomes: &[pb::Outcome],
    ) -> Result<u32, DbError> {
        self.usage_book()
            .record(reporter, outcomes, gb_runtime::now_ms());
        let max_failures = self.max_failures.load(std::sync::atomic::Ordering::Relaxed);
        self.mutate(|entries| {
            let mut changed = Vec::new();
            for outcome in outcomes {
                if let Some(entry) = entries.by_id.get_mut(&outcome.key_id) {
                    let change = entry.apply_outcome(outcome, max_failures);
                    changed.push((outcome.key_id, change));
                }
            }
            changed
        })
        .await
    }

    /// Resets the given keys; returns how many were found.
    pub async fn reset(&self, ids: &[i64]) -> Result<u32, DbError> {
        let now = gb_runtime::now_ms();
        self.mutate(|entries| {
            ids.iter()
                .filter_map(|id| Some((*id, entries.by_id.get_mut(id)?.reset(now))))
                .collect()
        })
        .await
    }

    /// Runs `apply` on the entries under the lock, then persists and publishes what it changed.
    async fn mutate(
        &self,
        apply: impl FnOnce(&mut Entries) -> Vec<(i64, Change)>,
    ) -> Result<u32, DbError> {
        let _writing = self.writer.lock().await;
        let (to_store, to_publish, applied) = {
            let mut entries = self.lock();
            let changes = apply(&mut entries);
            let applied = changes.len() as u32;
            let mut stored: BTreeMap<i64, KeyEntry> = BTreeMap::new();
            let mut visible: BTreeMap<i64, pb::PoolKey> = BTreeMap::new();
            for (id, change) in changes {
                let Some(entry) = entries.by_id.get(&id) else {
                    continue;
                };
                if change.stored {
                    stored.insert(id, entry.clone());
                }
                if change.visible {
                    visible.insert(id, entry.to_pool_key());
                }
            }
            (stored.into_values().collect::<Vec<_>>(), visible, applied)
        };
        // Chat replicas hear of a dead or cooling key first: the write-back can take a while.
        for pool_key in to_publish.into_values() {
            self.publish(pb::pool_event::Event::Upserted(pool_key));
        }
        store::save_states(&self.db, &to_store).await?;
        Ok(applied)
    }

    /// Sets `gemini_key_pool_keys{state}` from the current pool.
    pub fn record_gauges(&self) {
        let now = gb_runtime::now_ms();
        let (mut active, mut cooling, mut disabled) = (0u32, 0u32, 0u32);
        for entry in self.lock().by_id.values() {
            match entry.status_at(now) {
                pb::KeyStatus::Active | pb::KeyStatus::Unspecified => active += 1,
                pb::KeyStatus::CoolingDown => cooling += 1,
                pb::KeyStatus::Disabled => disabled += 1,
            }
        }
        metrics::gauge!("gemini_key_pool_keys", "state" => "active").set(f64::from(active));
        metrics::gauge!("gemini_key_pool_keys", "state" => "cooling_down").set(f64::from(cooling));
        metrics::gauge!("gemini_key_pool_keys", "state" => "disabled").set(f64::from(disabled));
    }

    fn publish(&self, event: pb::pool_event::Event) {
        self.record_gauges();
        // No receiver is fine: no chat replica is listening yet.
        let _ = self.events.send(pb::PoolEvent { event: Some(event) });
    }
}

/// Whether `KEY_MODEL_LIMITS` limits this key for this model (only such use is pushed).
fn limited(
    limits: &gb_runtime::settings::KeyModelLimits,
    entries: &Entries,
    key_id: i64,
    model: &str,
) -> bool {
    !limits.is_empty()
        && entries
            .by_id
            .get(&key_id)
            .is_some_and(|entry| limits.limit_for(&entry.key_type, model).is_some())
}
