//! The mock's own quotas per key and model, enforced as Google enforces them: a test sets how
//! many requests a key may make of a model per minute and per day; past that, the mock answers
//! Google's 429 for that model's per-minute or per-day quota (`QuotaFailure` naming the model,
//! `RetryInfo`). It counts the refusals, so that a test can show the gateway never met one.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What one key may make of one model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ModelQuota {
    pub rpm: Option<usize>,
    pub rpd: Option<usize>,
}

/// Why a call was refused: the quota that it would have gone over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refusal {
    pub per_day: bool,
    pub retry_delay_seconds: f64,
}

#[derive(Default)]
struct Counted {
    /// When each admitted request of the last minute came.
    minute: VecDeque<Instant>,
    /// Admitted requests since the quota was set (the mock's "day").
    day: usize,
}

#[derive(Default)]
pub struct Quotas {
    set: Mutex<HashMap<(String, String), ModelQuota>>,
    counted: Mutex<HashMap<(String, String), Counted>>,
    refusals: Mutex<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Quotas {
    pub fn set(&self, key: &str, model: &str, quota: ModelQuota) {
        let pair = (key.to_owned(), model.to_owned());
        lock(&self.counted).remove(&pair);
        lock(&self.set).insert(pair, quota);
    }

    /// How many calls were refused for going over a quota.
    pub fn refusals(&self) -> usize {
        *lock(&self.refusals)
    }

    /// Counts a request of `model` with `key`, or refuses it when it goes over the quota.
    pub fn admit(&self, key: &str, model: &str) -> Result<(), Refusal> {
        let pair = (key.to_owned(), model.to_owned());
        let Some(quota) = lock(&self.set).get(&pair).copied() else {
            return Ok(());
        };
        let now = Instant::now();
        let mut counted = lock(&self.counted);
        let counted = counted.entry(pair).or_default();
        while counted
            .minute
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            counted.minute.pop_front();
        }
        let refusal = if quota.rpd.is_some_and(|rpd| counted.day >= rpd) {
            Some(Refusal {
                per_day: true,
                retry_delay_seconds: 3600.0,
            })
        } else if quota.rpm.is_some_and(|rpm| counted.minute.len() >= rpm) {
            let oldest = counted.minute.front().copied().unwrap_or(now);
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(oldest));
            Some(Refusal {
                per_day: false,
                retry_delay_seconds: left.as_secs_f64().ceil(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            *lock(&self.refusals) += 1;
            return Err(refusal);
        }
        counted.minute.push_back(now);
        counted.day += 1;
        Ok(())
    }
}
