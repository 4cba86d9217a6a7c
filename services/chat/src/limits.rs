//! Known limits per key and model (`KEY_MODEL_LIMITS`), honoured before Google refuses: what
//! one key has used of one model in the last minute (requests, tokens) and in the current quota
//! day (requests, until the next midnight of `QUOTA_RESET_TIMEZONE`), and whether one more
//! request fits.
//!
//! The counts are every chat replica's: the keys service sums the outcome reports of all of
//! them and pushes the sums with the pool (`UsageUpdate`, naming for each replica the last
//! report it includes); this replica adds what it has used since that report, and what it has
//! in flight. Another replica's requests still in flight are the only ones missing, which
//! bounds the overshoot. A request is counted from the moment its key is picked: the check and
//! the count are one step under the key's lock, so this replica's own concurrent requests never
//! overshoot.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gb_proto::keys::v1 as pb;
use gb_runtime::settings::ModelLimit;

pub const MINUTE_MS: i64 = 60_000;
/// The running number of an attempt that ended without a report (the client left mid-call):
/// never acknowledged, counted until it leaves the windows.
const UNREPORTED: u64 = u64::MAX;
/// At most this many of this replica's own unacknowledged requests are kept per key and model
/// (the keys service acknowledges them within a second when it is up; a key under a limit
/// makes few requests a second).
const MAX_OWN: usize = 4_096;

/// One of this replica's requests that the pushed counts do not include yet.
#[derive(Clone, Copy, Debug)]
struct OwnUse {
    seq: u64,
    at_ms: i64,
    tokens: u64,
    day_end_ms: i64,
}

/// One key's use of one model, as this replica sees it.
#[derive(Debug, Default)]
struct ModelUsage {
    /// Every replica's reported use per second, as the keys service last pushed it.
    shared_seconds: Vec<pb::UsageSecond>,
    shared_day_end_ms: i64,
    shared_day_requests: u64,
    own: VecDeque<OwnUse>,
    in_flight: u32,
}

/// What counts against the limits at one moment.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    requests_minute: u64,
    tokens_minute: u64,
    requests_day: u64,
    /// (when it leaves the minute, requests, tokens) of what is counted in it.
    minute: Vec<(i64, u64, u64)>,
}

impl ModelUsage {
    /// What counts at `now_ms`; `with_times`: also when each part leaves the minute (wanted
    /// only when a limit is reached, to say when the key is free again).
    fn counts(&mut self, now_ms: i64, day_end_ms: i64, acked: u64, with_times: bool) -> Counts {
        let since = now_ms - MINUTE_MS;
        self.own
            .retain(|own| own.seq > acked && (own.at_ms > since || own.day_end_ms == day_end_ms));
        while self.own.len() > MAX_OWN {
            self.own.pop_front();
        }
        let mut counts = Counts {
            requests_minute: u64::from(self.in_flight),
            requests_day: u64::from(self.in_flight),
            ..Counts::default()
        };
        if with_times && self.in_flight > 0 {
            counts
                .minute
                .push((now_ms + MINUTE_MS, u64::from(self.in_flight), 0));
        }
        for second in &self.shared_seconds {
            // A second counts while any of it is within the minute.
            let last_ms = second.second * 1000 + 999;
            if last_ms > since {
                counts.requests_minute += u64::from(second.requests);
                counts.tokens_minute += second.tokens;
                if with_times {
                    counts.minute.push((
                        last_ms + MINUTE_MS,
                        u64::from(second.requests),
                        second.tokens,
                    ));
                }
            }
        }
        if self.shared_day_end_ms == day_end_ms {
            counts.requests_day += self.shared_day_requests;
        }
        for own in &self.own {
            if own.at_ms > since {
                counts.requests_minute += 1;
                counts.tokens_minute += own.tokens;
                if with_times {
                    counts.minute.push((own.at_ms + MINUTE_MS, 1, own.tokens));
                }
            }
            if own.day_end_ms == day_end_ms {
                counts.requests_day += 1;
            }
        }
        counts
    }
}

impl Counts {
    /// Whether one more request would go over `limit`.
    fn over(&self, limit: &ModelLimit) -> bool {
        limit.rpd.is_some_and(|rpd| self.requests_day >= rpd)
            || limit.rpm.is_some_and(|rpm| self.requests_minute >= rpm)
            || limit.tpm.is_some_and(|tpm| self.tokens_minute >= tpm)
    }

    /// Until when one more request would go over `limit`; `None`: it fits now.
    fn blocked_until(&mut self, limit: &ModelLimit, now_ms: i64, day_end_ms: i64) -> Option<i64> {
        let mut until = None::<i64>;
        let mut later = |at: i64| until = Some(until.map_or(at, |until| until.max(at)));
        if let Some(rpd) = limit.rpd
            && self.requests_day >= rpd
        {
            later(day_end_ms);
        }
        self.minute
            .sort_unstable_by_key(|(leaves_ms, _, _)| *leaves_ms);
        if let Some(rpm) = limit.rpm
            && self.requests_minute >= rpm
        {
            later(
                self.free_at(self.requests_minute, rpm, now_ms, |(_, requests, _)| {
                    *requests
                }),
            );
        }
        if let Some(tpm) = limit.tpm
            && self.tokens_minute >= tpm
        {
            later(self.free_at(self.tokens_minute, tpm, now_ms, |(_, _, tokens)| *tokens));
        }
        until
    }
}

impl Counts {
    /// When `total` (of the part `of` each entry counts) is under `limit` again: once enough
    /// of the oldest entries have left the minute (`minute` sorted by that time).
    fn free_at(
        &self,
        total: u64,
        limit: u64,
        now_ms: i64,
        of: impl Fn(&(i64, u64, u64)) -> u64,
    ) -> i64 {
        let mut left = total;
        let mut free_at = now_ms + MINUTE_MS;
        for entry in &self.minute {
            if left < limit {
                break;
            }
            left = left.saturating_sub(of(entry));
            free_at = entry.0;
        }
        free_at.max(now_ms + 1)
    }
}

/// One key's use of every model it has served under a limit.
#[derive(Debug, Default)]
pub struct KeyUsage {
    models: Mutex<HashMap<Box<str>, ModelUsage>>,
}

impl KeyUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, ModelUsage>> {
        self.models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more request of `model` when it fits `limit`; else until when it does not.
    pub fn reserve(
        &self,
        model: &str,
        limit: &ModelLimit,
        now_ms: i64,
        day_end_ms: i64,
        acked: u64,
    ) -> Result<(), i64> {
        let mut models = self.lock();
        let usage = match models.get_mut(model) {
            Some(usage) => usage,
            None => models.entry(model.into()).or_default(),
        };
        if !usage.counts(now_ms, day_end_ms, acked, false).over(limit) {
            usage.in_flight += 1;
            return Ok(());
        }
        let mut counts = usage.counts(now_ms, day_end_ms, acked, true);
        Err(counts
            .blocked_until(limit, now_ms, day_end_ms)
            .unwrap_or(now_ms + 1))
    }

    /// A reserved request ended: reported as `seq` (or never reported), with its tokens.
    pub fn settle(&self, model: &str, seq: Option<u64>, tokens: u64, at_ms: i64, day_end_ms: i64) {
        let mut models = self.lock();
        let Some(usage) = models.get_mut(model) else {
            return;
        };
        usage.in_flight = usage.in_flight.saturating_sub(1);
        usage.own.push_back(OwnUse {
            seq: seq.unwrap_or(UNREPORTED),
            at_ms,
            tokens,
            day_end_ms,
        });
    }

    /// The keys service's sums for one model replace the ones pushed before.
    pub fn apply_shared(&self, shared: &pb::KeyModelUsage) {
        let mut models = self.lock();
        let usage = models.entry(shared.model.as_str().into()).or_default();
        usage.shared_seconds = shared.seconds.clone();
        usage.shared_day_end_ms = shared.day_end_ms;
        usage.shared_day_requests = shared.day_requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_END: i64 = 10_000_000;

    fn limit(rpm: Option<u64>, tpm: Option<u64>, rpd: Option<u64>) -> ModelLimit {
        ModelLimit { rpm, tpm, rpd }
    }

    #[test]
    fn requests_per_minute_free_up_as_the_oldest_leave_the_minute() {
        let usage = KeyUsage::default();
        let rpm = limit(Some(2), None, None);
        assert_eq!(usage.reserve("m", &rpm, 1_000, DAY_END, 0), Ok(()));
        usage.settle("m", Some(1), 10, 1_000, DAY_END);
        assert_eq!(usage.reserve("m", &rpm, 5_000, DAY_END, 0), Ok(()));
        // In flight: counted all the same.
        assert_eq!(
            usage.reserve("m", &rpm, 6_000, DAY_END, 0),
            Err(61_000),
            "free when the first leaves the minute"
        );
        usage.settle("m", Some(2), 10, 5_000, DAY_END);
        assert!(usage.reserve("m", &rpm, 60_999, DAY_END, 0).is_err());
        assert_eq!(usage.reserve("m", &rpm, 61_000, DAY_END, 0), Ok(()));
    }

    #[test]
    fn tokens_per_minute_count_each_answer() {
        let usage = KeyUsage::default();
        let tpm = limit(None, Some(100), None);
        assert_eq!(usage.reserve("m", &tpm, 0, DAY_END, 0), Ok(()));
        usage.settle("m", Some(1), 60, 0, DAY_END);
        assert_eq!(usage.reserve("m", &tpm, 1, DAY_END, 0), Ok(()));
        usage.settle("m", Some(2), 60, 2_000, DAY_END);
        assert_eq!(
            usage.reserve("m", &tpm, 3_000, DAY_END, 0),
            Err(60_000),
            "under the limit once the first answer's tokens leave"
        );
        assert_eq!(
            usage.reserve("other", &tpm, 3_000, DAY_END, 0),
            Ok(()),
            "per model"
        );
    }

    #[test]
    fn requests_per_day_last_until_the_reset() {
        let usage = KeyUsage::default();
        let rpd = limit(None, None, Some(1));
        assert_eq!(usage.reserve("m", &rpd, 0, DAY_END, 0), Ok(()));
        usage.settle("m", Some(1), 0, 0, DAY_END);
        assert_eq!(usage.reserve("m", &rpd, 120_000, DAY_END, 0), Err(DAY_END));
        assert_eq!(
            usage.reserve("m", &rpd, DAY_END, DAY_END + 86_400_000, 0),
            Ok(()),
            "a new day"
        );
        let never = limit(None, None, Some(0));
        assert_eq!(usage.reserve("x", &never, 0, DAY_END, 0), Err(DAY_END));
    }

    /// The keys service's sums of model `m`: `requests` and `tokens` in second 1, all today.
    fn shared_in_second_1(requests: u32, tokens: u64) -> pb::KeyModelUsage {
        pb::KeyModelUsage {
            key_id: 1,
            model: "m".into(),
            seconds: vec![pb::UsageSecond {
                second: 1,
                requests,
                tokens,
            }],
            day_end_ms: DAY_END,
            day_requests: u64::from(requests),
            day_tokens: tokens,
        }
    }

    /// The keys service's sums include this replica's reports up to `acked`: those are not
    /// counted twice, the ones after it are counted beside the sums.
    #[test]
    fn pushed_sums_and_own_unacknowledged_use_add_up() {
        let usage = KeyUsage::default();
        let rpm = limit(Some(3), None, None);
        for seq in 1..=2 {
            assert_eq!(usage.reserve("m", &rpm, 1_000, DAY_END, 0), Ok(()));
            usage.settle("m", Some(seq), 5, 1_000, DAY_END);
        }
        // Another replica's request and this one's first: the sum has two, acked through 1.
        usage.apply_shared(&shared_in_second_1(2, 10));
        // 2 shared (seq 1 among them) + this replica's seq 2: full.
        assert!(usage.reserve("m", &rpm, 2_000, DAY_END, 1).is_err());
        // Once the sums include seq 2 too (3 in all), still full.
        usage.apply_shared(&shared_in_second_1(3, 15));
        assert!(usage.reserve("m", &rpm, 2_000, DAY_END, 2).is_err());
        // A pushed second counts until all of it has left the minute.
        assert!(usage.reserve("m", &rpm, 61_000, DAY_END, 2).is_err());
        assert_eq!(usage.reserve("m", &rpm, 61_999, DAY_END, 2), Ok(()));
    }

    #[test]
    fn an_attempt_that_ended_unreported_counts_until_it_leaves_the_minute() {
        let usage = KeyUsage::default();
        let rpm = limit(Some(1), None, None);
        assert_eq!(usage.reserve("m", &rpm, 0, DAY_END, 0), Ok(()));
        usage.settle("m", None, 0, 0, DAY_END);
        assert!(
            usage
                .reserve("m", &rpm, 1_000, DAY_END, u64::MAX - 1)
                .is_err()
        );
        assert_eq!(usage.reserve("m", &rpm, 60_001, DAY_END, 0), Ok(()));
    }
}
