//! Counters of upstream attempts kept as the records arrive: per time bucket (minute, hour,
//! day) × key × model × client × status × outcome, the calls, successes, tokens, latency sum
//! and a latency histogram. Each batch of records adds to them with upserts in the batch's own
//! transaction; every statistic is an aggregate over the buckets of its window, so its cost is
//! set by the number of buckets, never by the number of requests, and it is exact at any volume.
//!
//! A window is cut at whole minutes (its start rounded to the nearest minute; to the nearest
//! hour or day once minute or hour buckets of that age are gone) and read from the widest
//! buckets that fit in it: a day is one row per group, not 1,440.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::schema::call_rollups;

pub const MINUTE_S: i32 = 60;
pub const HOUR_S: i32 = 3_600;
pub const DAY_S: i32 = 86_400;
const WIDTHS_S: [i32; 3] = [MINUTE_S, HOUR_S, DAY_S];

/// How long buckets of each width are kept (days are kept as long as request logs are).
/// Minutes serve only the partial hours at the edges of windows of up to a day.
pub const MINUTE_BUCKETS_KEPT_MS: i64 = 26 * 3_600_000;
pub const HOUR_BUCKETS_KEPT_MS: i64 = 40 * 86_400_000;

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [i64; 7] = [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000];

/// One attempt, as the counters see it.
pub struct Attempt<'a> {
    pub at_ms: i64,
    pub key_id: i64,
    pub key_masked: &'a str,
    pub model: &'a str,
    pub client: &'a str,
    pub status_code: i32,
    pub outcome: &'a str,
    pub success: bool,
    pub latency_ms: i32,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// A bucket, borrowing its texts from the batch: summing allocates once per bucket, not per
/// record. Its order (the fields' order) is the one every batch upserts in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BucketKey<'a> {
    width_s: i32,
    bucket_ms: i64,
    key_id: i64,
    model_name: &'a str,
    client: &'a str,
    status_code: i32,
    outcome: &'a str,
    key_masked: &'a str,
}

/// The sums of a bucket (and of any set of buckets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub calls: i64,
    pub successes: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms_sum: i64,
    pub latency: [i64; 8],
}

impl Sums {
    fn add_attempt(&mut self, attempt: &Attempt<'_>) {
        self.calls += 1;
        self.successes += i64::from(attempt.success);
        self.prompt_tokens += attempt.prompt_tokens;
        self.completion_tokens += attempt.completion_tokens;
        self.latency_ms_sum += i64::from(attempt.latency_ms);
        let latency = i64::from(attempt.latency_ms);
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| latency <= *bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.latency[bucket] += 1;
    }

    pub fn add(&mut self, other: &Sums) {
        self.calls += other.calls;
        self.successes += other.successes;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.latency_ms_sum += other.latency_ms_sum;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
    }

    /// The latency below which a `quantile` (0–1) of the calls fell, as the upper bound of the
    /// histogram bucket it lands in (the last, open bucket answers with its lower bound).
    pub fn latency_quantile_ms(&self, quantile: f64) -> u32 {
        let total: i64 = self.latency.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = (quantile * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (index, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let bound = LATENCY_BOUNDS_MS
                    .get(index)
                    .or(LATENCY_BOUNDS_MS.last())
                    .copied()
                    .unwrap_or_default();
                return u32::try_from(bound).unwrap_or(u32::MAX);
            }
        }
        0
    }
}

#[derive(Insertable)]
// Many rows in one INSERT on SQLite too (see `write::NewRequest`).
#[diesel(table_name = call_rollups, treat_none_as_default_value = false)]
pub struct RollupRow {
    width_s: i32,
    bucket_ms: i64,
    key_id: i64,
    key_masked: String,
    model_name: String,
    client: String,
    status_code: i32,
    outcome: String,
    calls: i64,
    successes: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    latency_ms_sum: i64,
    latency_le_100: i64,
    latency_le_300: i64,
    latency_le_1000: i64,
    latency_le_3000: i64,
    latency_le_10000: i64,
    latency_le_30000: i64,
    latency_le_100000: i64,
    latency_over: i64,
}

/// Rows per upsert statement (21 columns a row: well under both backends' parameter limits).
pub const ROWS_PER_UPSERT: usize = 200;

/// A batch's attempts summed per bucket: one row per bucket touched, for each width.
pub fn rows_of<'a>(attempts: impl IntoIterator<Item = Attempt<'a>>) -> Vec<RollupRow> {
    let mut sums: HashMap<BucketKey<'a>, Sums> = HashMap::new();
    for attempt in attempts {
        for width_s in WIDTHS_S {
            let width_ms = i64::from(width_s) * 1000;
            let key = BucketKey {
                width_s,
                bucket_ms: attempt.at_ms.div_euclid(width_ms) * width_ms,
                key_id: attempt.key_id,
                model_name: attempt.model,
                client: attempt.client,
                status_code: attempt.status_code,
                outcome: attempt.outcome,
                key_masked: attempt.key_masked,
            };
            sums.entry(key).or_default().add_attempt(&attempt);
        }
    }
    let mut sums: Vec<(BucketKey<'a>, Sums)> = sums.into_iter().collect();
    // One order for every batch, so that concurrent upserts lock rows in the same order.
    sums.sort_unstable_by_key(|(key, _)| *key);
    sums.into_iter()
        .map(|(key, sums)| RollupRow {
            width_s: key.width_s,
            bucket_ms: key.bucket_ms,
            key_id: key.key_id,
            key_masked: key.key_masked.to_owned(),
            model_name: key.model_name.to_owned(),
            client: key.client.to_owned(),
            status_code: key.status_code,
            outcome: key.outcome.to_owned(),
            calls: sums.calls,
            successes: sums.successes,
            prompt_tokens: sums.prompt_tokens,
            completion_tokens: sums.completion_tokens,
            latency_ms_sum: sums.latency_ms_sum,
            latency_le_100: sums.latency[0],
            latency_le_300: sums.latency[1],
            latency_le_1000: sums.latency[2],
            latency_le_3000: sums.latency[3],
            latency_le_10000: sums.latency[4],
            latency_le_30000: sums.latency[5],
            latency_le_100000: sums.latency[6],
            latency_over: sums.latency[7],
        })
        .collect()
}

/// The upsert of a chunk of [`RollupRow`]s: adds to the buckets that exist, creates the others.
/// One statement for both backends (`INSERT … ON CONFLICT … DO UPDATE`), run by the async
/// connection on Postgres and the blocking one on SQLite.
macro_rules! upsert_rollups {
    ($chunk:expr) => {{
        use crate::schema::call_rollups::dsl as r;
        use diesel::upsert::excluded;
        diesel::insert_into(r::call_rollups)
            .values($chunk)
            .on_conflict((
                r::width_s,
                r::bucket_ms,
                r::key_id,
                r::key_masked,
                r::model_name,
                r::client,
                r::status_code,
                r::outcome,
            ))
            .do_update()
            .set((
                r::calls.eq(r::calls + excluded(r::calls)),
                r::successes.eq(r::successes + excluded(r::successes)),
                r::prompt_tokens.eq(r::prompt_tokens + excluded(r::prompt_tokens)),
                r::completion_tokens.eq(r::completion_tokens + excluded(r::completion_tokens)),
                r::latency_ms_sum.eq(r::latency_ms_sum + excluded(r::latency_ms_sum)),
                r::latency_le_100.eq(r::latency_le_100 + excluded(r::latency_le_100)),
                r::latency_le_300.eq(r::latency_le_300 + excluded(r::latency_le_300)),
                r::latency_le_1000.eq(r::latency_le_1000 + excluded(r::latency_le_1000)),
                r::latency_le_3000.eq(r::latency_le_3000 + excluded(r::latency_le_3000)),
                r::latency_le_10000.eq(r::latency_le_10000 + excluded(r::latency_le_10000)),
                r::latency_le_30000.eq(r::latency_le_30000 + excluded(r::latency_le_30000)),
                r::latency_le_100000.eq(r::latency_le_100000 + excluded(r::latency_le_100000)),
                r::latency_over.eq(r::latency_over + excluded(r::latency_over)),
            ))
    }};
}
pub(crate) use upsert_rollups;

/// A run of buckets of one width: `[from_ms, to_ms)` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub width_s: i32,
    pub from_ms: i64,
    pub to_ms: i64,
}

fn round_to(value: i64, unit: i64) -> i64 {
    (value + unit / 2).div_euclid(unit) * unit
}

/// The buckets that make up the window from `since_ms` to `now_ms`, the widest that start at
/// each point: each instant of the window in exactly one bucket. The buckets that hold `now`
/// (this minute, hour, day) are whole buckets: nothing after now is in them yet.
pub fn ranges(since_ms: i64, now_ms: i64) -> Vec<Range> {
    let minute = i64::from(MINUTE_S) * 1000;
    let hour = i64::from(HOUR_S) * 1000;
    let day = i64::from(DAY_S) * 1000;
    let mut at = if since_ms < now_ms - HOUR_BUCKETS_KEPT_MS {
        round_to(since_ms, day)
    } else if since_ms < now_ms - MINUTE_BUCKETS_KEPT_MS {
        round_to(since_ms, hour)
    } else {
        round_to(since_ms, minute)
    };
    let mut ranges: Vec<Range> = Vec::new();
    while at <= now_ms {
        // The widest bucket that starts here: all it holds is from the window (nothing is
        // logged after now).
        let width_ms = [day, hour, minute]
            .into_iter()
            .find(|width| at % width == 0)
            .unwrap_or(minute);
        let width_s = i32::try_from(width_ms / 1000).unwrap_or(MINUTE_S);
        match ranges.last_mut() {
            Some(last) if last.width_s == width_s && last.to_ms == at => last.to_ms = at + width_ms,
            _ => ranges.push(Range {
                width_s,
                from_ms: at,
                to_ms: at + width_ms,
            }),
        }
        at += width_ms;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 86_400_000;

    /// Every minute of `[from, to)` is covered by exactly one range.
    fn covered_once(ranges: &[Range], from: i64, to: i64) {
        let mut minute = from;
        while minute < to {
            let holding = ranges
                .iter()
                .filter(|range| range.from_ms <= minute && minute < range.to_ms)
                .count();
            assert_eq!(
                holding, 1,
                "minute {minute} in {holding} ranges: {ranges:?}"
            );
            minute += MINUTE;
        }
    }

    #[test]
    fn a_day_is_read_from_few_buckets() {
        let today = 20_000 * DAY;
        let now = today + 13 * HOUR + 25 * MINUTE + 17_000;
        let since = now - DAY;
        let ranges = ranges(since, now);
        // Minutes up to the next hour, hours up to midnight, then today as one day bucket.
        assert_eq!(ranges.len(), 3, "{ranges:?}");
        assert_eq!(ranges[0].width_s, MINUTE_S);
        assert_eq!(ranges[1].width_s, HOUR_S);
        assert_eq!(
            ranges[2],
            Range {
                width_s: DAY_S,
                from_ms: today,
                to_ms: today + DAY
            }
        );
        covered_once(&ranges, ranges[0].from_ms, now);
        let buckets: i64 = ranges
            .iter()
            .map(|range| (range.to_ms - range.from_ms) / (i64::from(range.width_s) * 1000))
            .sum();
        assert!(buckets < 60 + 24 + 1, "{buckets} buckets");
    }

    #[test]
    fn windows_start_at_the_nearest_minute_and_cover_now() {
        let now = 20_000 * DAY + 5 * HOUR + 59 * MINUTE + 40_000;
        for (since, start) in [
            (now - MINUTE, 20_000 * DAY + 5 * HOUR + 59 * MINUTE),
            (now - HOUR, 20_000 * DAY + 5 * HOUR),
            (now - 8 * HOUR + 20_000, 20_000 * DAY - 2 * HOUR),
        ] {
            let ranges = ranges(since, now);
            assert_eq!(ranges[0].from_ms, start, "{since}: {ranges:?}");
            covered_once(&ranges, start, now);
            assert!(ranges.last().is_some_and(|range| range.to_ms > now));
        }
    }

    #[test]
    fn old_windows_round_to_the_buckets_still_kept() {
        let now = 20_000 * DAY + 10 * HOUR;
        let month = ranges(now - 30 * DAY - 17 * MINUTE, now);
        assert!(
            month.iter().all(|range| range.width_s != MINUTE_S),
            "{month:?}"
        );
        let year = ranges(now - 365 * DAY + 3 * HOUR, now);
        assert!(year.iter().all(|range| range.width_s == DAY_S), "{year:?}");
        covered_once(&year, year[0].from_ms, now);
    }

    #[test]
    fn a_batch_is_summed_per_bucket_of_each_width() {
        let attempt = |at_ms, latency_ms, success| Attempt {
            at_ms,
            key_id: 1,
            key_masked: "AIzaSy…abcd",
            model: "gemini-2.5-flash",
            client: "c",
            status_code: if success { 200 } else { 429 },
            outcome: "",
            success,
            latency_ms,
            prompt_tokens: 3,
            completion_tokens: 4,
        };
        let base = 20_000 * DAY + HOUR;
        let rows = rows_of([
            attempt(base + 1_000, 50, true),
            attempt(base + 2_000, 250, true),
            attempt(base + MINUTE + 5, 200_000, true),
            attempt(base + 3_000, 10, false),
        ]);
        let minute_rows: Vec<&RollupRow> =
            rows.iter().filter(|row| row.width_s == MINUTE_S).collect();
        assert_eq!(minute_rows.len(), 3, "two minutes for 200, one for 429");
        let first = minute_rows
            .iter()
            .find(|row| row.bucket_ms == base && row.status_code == 200)
            .unwrap();
        assert_eq!(
            (first.calls, first.successes, first.prompt_tokens),
            (2, 2, 6)
        );
        assert_eq!((first.latency_le_100, first.latency_le_300), (1, 1));
        let hour = rows
            .iter()
            .find(|row| row.width_s == HOUR_S && row.status_code == 200)
            .unwrap();
        assert_eq!(
            (hour.calls, hour.latency_over, hour.latency_ms_sum),
            (3, 1, 200_300)
        );
        assert_eq!(rows.iter().filter(|row| row.width_s == DAY_S).count(), 2);
    }

    #[test]
    fn quantiles_come_from_the_histogram() {
        let sums = Sums {
            latency: [90, 9, 0, 1, 0, 0, 0, 0],
            ..Sums::default()
        };
        assert_eq!(sums.latency_quantile_ms(0.5), 100);
        assert_eq!(sums.latency_quantile_ms(0.99), 300);
        assert_eq!(sums.latency_quantile_ms(1.0), 3_000);
        assert_eq!(Sums::default().latency_quantile_ms(0.5), 0);
    }
}
