//! The pick: the next usable key in round-robin order (or one that holds a copy of a file the
//! request references), within its known limits; what a picked key holds until its attempt
//! is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gb_runtime::settings::TimeZone;

use super::{LocalKey, LocalPool, NoKey, PoolLimits};

/// A picked key; when a limit applies to it for the model, one request is counted against it
/// from the pick until the attempt is settled (reported) or dropped.
pub struct Picked {
    pub key: Arc<LocalKey>,
    reserved: Option<Reserved>,
}

struct Reserved {
    model: Box<str>,
    /// When it was picked: the request counts from then (as Google counts it on arrival).
    at_ms: i64,
    day_end_ms: i64,
    settled: AtomicBool,
}

impl std::ops::Deref for Picked {
    type Target = LocalKey;

    fn deref(&self) -> &LocalKey {
        &self.key
    }
}

impl Picked {
    /// A key that is not in the pool (`PAID_KEY`): no limit counts it.
    pub fn outside_pool(value: &str) -> Self {
        Picked {
            key: Arc::new(LocalKey::outside_pool(value)),
            reserved: None,
        }
    }

    /// The attempt ended and was reported as `seq` (`None`: not reported), with its tokens.
    pub fn settle(&self, seq: Option<u64>, tokens: u64) {
        let Some(reserved) = &self.reserved else {
            return;
        };
        if reserved.settled.swap(true, Ordering::Relaxed) {
            return;
        }
        self.key.usage.settle(
            &reserved.model,
            seq,
            tokens,
            reserved.at_ms,
            reserved.day_end_ms,
        );
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        // An attempt cut short (the client left): it still went upstream.
        self.settle(None, 0);
    }
}

impl LocalPool {
    /// Picks `key` (usable for `model`) if its known limit allows one more request now, counting
    /// it; else answers when it will.
    fn reserve(
        &self,
        key: &Arc<LocalKey>,
        model: &str,
        limits: &PoolLimits,
        now_ms: i64,
    ) -> Result<Picked, i64> {
        let limit = if limits.table.is_empty() {
            None
        } else {
            limits.table.limit_for(&key.key_type, model)
        };
        let Some(limit) = limit else {
            return Ok(Picked {
                key: key.clone(),
                reserved: None,
            });
        };
        let day_end_ms = self.day_end_ms(limits.reset, now_ms);
        let acked = self.acked.load(Ordering::Relaxed);
        key.usage
            .reserve(model, &limit, now_ms, day_end_ms, acked)
            .map(|()| Picked {
                key: key.clone(),
                reserved: Some(Reserved {
                    model: model.into(),
                    at_ms: now_ms,
                    day_end_ms,
                    settled: AtomicBool::new(false),
                }),
            })
    }

    fn limits(&self) -> Arc<PoolLimits> {
        self.limits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The end of the quota day that `now_ms` is in.
    fn day_end_ms(&self, reset: TimeZone, now_ms: i64) -> i64 {
        let cached = self.day_end_ms.load(Ordering::Relaxed);
        if cached > now_ms && cached - now_ms <= 26 * 3_600_000 {
            return cached;
        }
        let day_end = reset.next_midnight_ms(now_ms);
        self.day_end_ms.store(day_end, Ordering::Relaxed);
        day_end
    }

    /// The next key in round-robin order that may serve `model`, that this request has not
    /// tried yet, and that one more request of `model` keeps within its known limits.
    pub fn pick(&self, model: &str, tried: &[i64], now_ms: i64) -> Result<Picked, NoKey> {
        self.pick_preferring(model, tried, &[], now_ms)
    }

    /// A key for `model`, as [`LocalPool::pick`], but one of `preferred` (in its order) when
    /// one of them is usable: the keys that hold a copy of a file the request references.
    pub fn pick_preferring(
        &self,
        model: &str,
        tried: &[i64],
        preferred: &[i64],
        now_ms: i64,
    ) -> Result<Picked, NoKey> {
        let ring = self.ring();
        let count = ring.len();
        if count == 0 {
            return Err(NoKey::NoneUsable);
        }
        let limits = self.limits();
        for id in preferred.iter().filter(|id| !tried.contains(id)) {
            if let Some(key) = ring.iter().find(|key| key.id == *id)
                && key.usable_at(model, now_ms)
                && let Ok(picked) = self.reserve(key, model, &limits, now_ms)
            {
                return Ok(picked);
            }
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
                match self.reserve(key, model, &limits, now_ms) {
                    Ok(picked) => return Ok(picked),
                    Err(free_at_ms) => {
                        metrics::counter!("gemini_key_limit_skips_total").increment(1);
                        soonest = soonest.min(free_at_ms);
                    }
                }
                continue;
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
}
