//! Every key's use of every model, summed over the outcome reports of all chat replicas: the
//! seconds of the last minute (requests, tokens) and the current quota day. The chat replicas
//! check `KEY_MODEL_LIMITS` against these sums (pushed to them a few times a second, with the
//! last report of each replica they include) plus their own use since; the statistics read them.
//!
//! Kept in memory only: a restart of the keys service starts the counts over (a key that then
//! goes over Google's limit is rested by the 429 it gets, as without limits).

use std::collections::{BTreeSet, HashMap, VecDeque};

use gb_proto::keys::v1 as pb;
use gb_runtime::settings::TimeZone;

const MINUTE_MS: i64 = 60_000;
/// A replica not heard from for this long is forgotten.
const REPORTER_TTL_MS: i64 = 3_600_000;

#[derive(Clone, Debug, Default)]
pub struct PairUsage {
    seconds: VecDeque<pb::UsageSecond>,
    day_end_ms: i64,
    day_requests: u64,
    day_tokens: u64,
}

impl PairUsage {
    fn prune(&mut self, now_ms: i64) {
        let since = now_ms - MINUTE_MS;
        while self
            .seconds
            .front()
            .is_some_and(|second| second.second * 1000 + 999 <= since)
        {
            self.seconds.pop_front();
        }
    }

    fn add(&mut self, at_ms: i64, tokens: u64, day_end_ms: i64) {
        let second = at_ms.div_euclid(1000);
        match self
            .seconds
            .iter_mut()
            .rev()
            .find(|known| known.second == second)
        {
            Some(known) => {
                known.requests += 1;
                known.tokens += tokens;
            }
            None => {
                let at = self
                    .seconds
                    .iter()
                    .position(|known| known.second > second)
                    .unwrap_or(self.seconds.len());
                self.seconds.insert(
                    at,
                    pb::UsageSecond {
                        second,
                        requests: 1,
                        tokens,
                    },
                );
            }
        }
        if day_end_ms > self.day_end_ms {
            self.day_end_ms = day_end_ms;
            self.day_requests = 0;
            self.day_tokens = 0;
        }
        if day_end_ms == self.day_end_ms {
            self.day_requests += 1;
            self.day_tokens += tokens;
        }
    }

    /// Requests and tokens of the last minute at `now_ms`, and of the day (0 once it ended).
    pub fn totals(&self, now_ms: i64) -> (u64, u64, u64, u64) {
        let since = now_ms - MINUTE_MS;
        let (mut requests, mut tokens) = (0, 0);
        for second in &self.seconds {
            if second.second * 1000 + 999 > since {
                requests += u64::from(second.requests);
                tokens += second.tokens;
            }
        }
        if self.day_end_ms > now_ms {
            (requests, tokens, self.day_requests, self.day_tokens)
        } else {
            (requests, tokens, 0, 0)
        }
    }

    pub fn day_end_ms(&self) -> i64 {
        self.day_end_ms
    }

    fn to_proto(&self, key_id: i64, model: &str) -> pb::KeyModelUsage {
        pb::KeyModelUsage {
            key_id,
            model: model.to_owned(),
            seconds: self.seconds.iter().cloned().collect(),
            day_end_ms: self.day_end_ms,
            day_requests: self.day_requests,
            day_tokens: self.day_tokens,
        }
    }
}

#[derive(Default)]
pub struct UsageBook {
    pairs: HashMap<(i64, String), PairUsage>,
    /// Per replica: the last running number applied, and when it was heard from.
    applied: HashMap<String, (u64, i64)>,
    /// The pairs changed since the last update was taken.
    changed: BTreeSet<(i64, String)>,
    reset: TimeZone,
}

impl UsageBook {
    pub fn set_reset(&mut self, reset: TimeZone) {
        self.reset = reset;
    }

    /// Counts a batch of one replica's outcomes; a report already counted (a batch sent
    /// again after a lost answer) is not counted twice.
    pub fn record(&mut self, reporter: &str, outcomes: &[pb::Outcome], now_ms: i64) {
        let mut last = self.applied.get(reporter).map_or(0, |(seq, _)| *seq);
        for outcome in outcomes {
            if outcome.key_id <= 0 || outcome.model.is_empty() {
                continue;
            }
            if outcome.seq != 0 {
                if outcome.seq <= last {
                    continue;
                }
                last = outcome.seq;
            }
            let day_end_ms = self.reset.next_midnight_ms(outcome.at_ms);
            let pair = (outcome.key_id, outcome.model.clone());
            let usage = self.pairs.entry(pair.clone()).or_default();
            usage.add(
                outcome.at_ms,
                outcome.prompt_tokens + outcome.completion_tokens,
                day_end_ms,
            );
            usage.prune(now_ms);
            self.changed.insert(pair);
        }
        if !reporter.is_empty() {
            self.applied.insert(reporter.to_owned(), (last, now_ms));
        }
    }

    /// Every pair is pushed again at the next update (the limits changed: pairs newly under
    /// one must reach the chat replicas).
    pub fn mark_all_changed(&mut self) {
        self.changed.extend(self.pairs.keys().cloned());
    }

    /// Forgets a deleted key.
    pub fn remove_key(&mut self, key_id: i64) {
        self.pairs.retain(|(id, _), _| *id != key_id);
        self.changed.retain(|(id, _)| *id != key_id);
    }

    fn applied(&self) -> HashMap<String, u64> {
        self.applied
            .iter()
            .map(|(reporter, (seq, _))| (reporter.clone(), *seq))
            .collect()
    }

    /// The pairs changed since the last call that `wanted` keeps (those under a limit: the
    /// chat replicas need no others), with what every replica's reports they include; `None`
    /// when none changed.
    pub fn take_update(
        &mut self,
        now_ms: i64,
        wanted: impl Fn(i64, &str) -> bool,
    ) -> Option<pb::UsageUpdate> {
        self.applied
            .retain(|_, (_, heard_ms)| *heard_ms > now_ms - REPORTER_TTL_MS);
        self.pairs.retain(|_, usage| {
            usage.prune(now_ms);
            !usage.seconds.is_empty() || usage.day_end_ms > now_ms
        });
        if self.changed.is_empty() {
            return None;
        }
        let changed = std::mem::take(&mut self.changed);
        let usage: Vec<pb::KeyModelUsage> = changed
            .iter()
            .filter(|(key_id, model)| wanted(*key_id, model))
            .filter_map(|pair| Some(self.pairs.get(pair)?.to_proto(pair.0, &pair.1)))
            .collect();
        if usage.is_empty() {
            return None;
        }
        Some(pb::UsageUpdate {
            usage,
            applied: self.applied(),
        })
    }

    /// Everything `wanted` keeps, for a replica that starts watching.
    pub fn full(&self, wanted: impl Fn(i64, &str) -> bool) -> pb::UsageUpdate {
        pb::UsageUpdate {
            usage: self
                .pairs
                .iter()
                .filter(|((key_id, model), _)| wanted(*key_id, model))
                .map(|((key_id, model), usage)| usage.to_proto(*key_id, model))
                .collect(),
            applied: self.applied(),
        }
    }

    /// Every (key, model) with its usage, for the statistics.
    pub fn pairs(&self) -> Vec<(i64, String, PairUsage)> {
        let mut pairs: Vec<_> = self
            .pairs
            .iter()
            .map(|((key_id, model), usage)| (*key_id, model.clone(), usage.clone()))
            .collect();
        pairs.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(seq: u64, key_id: i64, model: &str, at_ms: i64, tokens: u64) -> pb::Outcome {
        pb::Outcome {
            seq,
            key_id,
            model: model.into(),
            at_ms,
            prompt_tokens: tokens,
            class: pb::OutcomeClass::Success.into(),
            ..Default::default()
        }
    }

    #[test]
    fn replicas_reports_add_up_once_each() {
        let mut book = UsageBook::default();
        let now = 1_800_000_000_000;
        book.record(
            "a",
            &[outcome(1, 1, "m", now, 10), outcome(2, 1, "m", now, 5)],
            now,
        );
        book.record("b", &[outcome(1, 1, "m", now + 1_500, 1)], now + 1_500);
        // Batch "a" sent again after a lost answer: not counted twice.
        book.record("a", &[outcome(2, 1, "m", now, 5)], now + 1_500);
        let update = book.take_update(now + 1_500, |_, _| true).unwrap();
        assert_eq!(update.usage.len(), 1);
        let usage = &update.usage[0];
        assert_eq!(
            usage
                .seconds
                .iter()
                .map(|second| (second.requests, second.tokens))
                .collect::<Vec<_>>(),
            vec![(2, 15), (1, 1)]
        );
        assert_eq!(usage.day_requests, 3);
        assert_eq!(update.applied.get("a"), Some(&2));
        assert_eq!(update.applied.get("b"), Some(&1));
        assert!(
            book.take_update(now + 1_600, |_, _| true).is_none(),
            "nothing new"
        );
        book.record("b", &[outcome(2, 2, "m", now + 1_600, 1)], now + 1_600);
        assert!(
            book.take_update(now + 1_600, |key_id, _| key_id == 1)
                .is_none(),
            "a pair under no limit is not pushed"
        );
        let totals = book.pairs()[0].2.totals(now + 61_000);
        assert_eq!(totals.0, 1, "the first second has left the minute");
        assert_eq!(totals.2, 3, "the day counts all");
    }

    #[test]
    fn a_new_quota_day_starts_the_day_over() {
        let mut book = UsageBook::default();
        let zone = TimeZone::default();
        let now = 1_800_000_000_000;
        let midnight = zone.next_midnight_ms(now);
        book.record("a", &[outcome(1, 1, "m", midnight - 1, 0)], midnight - 1);
        book.record("a", &[outcome(2, 1, "m", midnight + 1, 0)], midnight + 1);
        let (_, _, day_requests, _) = book.pairs()[0].2.totals(midnight + 2);
        assert_eq!(day_requests, 1);
        book.remove_key(1);
        assert!(book.pairs().is_empty());
    }
}
