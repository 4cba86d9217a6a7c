//! The statistics, each an aggregate over the counters of its window (`rollups.rs`): one
//! grouped query per run of buckets of one width (at most five runs for any window), merged
//! here. What they read grows with the number of buckets, not of requests.

use std::collections::BTreeMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use gb_runtime::database::{Database, DbError};
use gb_runtime::with_connection;

use crate::rollups::{Range, Sums, ranges};
use crate::schema::call_rollups as r;

/// `SUM(column)` as a BIGINT on both backends (Postgres sums BIGINTs into NUMERIC), 0 for none.
macro_rules! total {
    ($column:literal) => {
        sql::<BigInt>(concat!("CAST(COALESCE(SUM(", $column, "), 0) AS BIGINT)"))
    };
}

/// The sums of the selected buckets, in [`Sums`]' order.
macro_rules! sums {
    () => {
        (
            total!("calls"),
            total!("successes"),
            total!("prompt_tokens"),
            total!("completion_tokens"),
            total!("latency_ms_sum"),
            total!("latency_le_100"),
            total!("latency_le_300"),
            total!("latency_le_1000"),
            total!("latency_le_3000"),
            total!("latency_le_10000"),
            total!("latency_le_30000"),
            total!("latency_le_100000"),
            total!("latency_over"),
        )
    };
}

type SumsRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

fn sums_of(row: SumsRow) -> Sums {
    let (calls, successes, prompt, completion, latency_sum, l0, l1, l2, l3, l4, l5, l6, l7) = row;
    Sums {
        calls,
        successes,
        prompt_tokens: prompt,
        completion_tokens: completion,
        latency_ms_sum: latency_sum,
        latency: [l0, l1, l2, l3, l4, l5, l6, l7],
    }
}

/// The buckets of one run: its width, from its first start to before its end.
macro_rules! in_range {
    ($range:expr) => {
        r::table
            .filter(r::width_s.eq($range.width_s))
            .filter(r::bucket_ms.ge($range.from_ms))
            .filter(r::bucket_ms.lt($range.to_ms))
    };
}

/// Every attempt of the window.
pub async fn total(db: &Database, since_ms: i64, now_ms: i64) -> Result<Sums, DbError> {
    let mut all = Sums::default();
    for range in ranges(since_ms, now_ms) {
        let row: SumsRow = with_connection!(db, |conn| {
            in_range!(range).select(sums!()).get_result(conn).await?
        });
        all.add(&sums_of(row));
    }
    Ok(all)
}

/// Calls and successes per bucket of `width_s` since `since_ms` (bucket start, calls,
/// successes), oldest first. Buckets of a width are kept for a time (`MINUTE_BUCKETS_KEPT_MS`,
/// `HOUR_BUCKETS_KEPT_MS`): older ones are simply not there.
pub async fn series(
    db: &Database,
    width_s: i32,
    since_ms: i64,
) -> Result<Vec<(i64, i64, i64)>, DbError> {
    Ok(with_connection!(db, |conn| {
        r::table
            .filter(r::width_s.eq(width_s))
            .filter(r::bucket_ms.ge(since_ms))
            .group_by(r::bucket_ms)
            .select((r::bucket_ms, total!("calls"), total!("successes")))
            .order_by(r::bucket_ms.asc())
            .load(conn)
            .await?
    }))
}

/// Every attempt of the window, per key (keys only: id > 0): one row per key and range of
/// buckets, whatever the traffic.
pub async fn per_key(
    db: &Database,
    since_ms: i64,
    now_ms: i64,
) -> Result<BTreeMap<i64, Sums>, DbError> {
    let mut keys: BTreeMap<i64, Sums> = BTreeMap::new();
    for range in ranges(since_ms, now_ms) {
        let rows: Vec<(i64, SumsRow)> = with_connection!(db, |conn| {
            in_range!(range)
                .filter(r::key_id.gt(0))
                .group_by(r::key_id)
                .select((r::key_id, sums!()))
                .load(conn)
                .await?
        });
        for (key_id, sums) in rows {
            keys.entry(key_id).or_default().add(&sums_of(sums));
        }
    }
    Ok(keys)
}

/// Attempts answered with `status_code`, per key (keys only: id > 0).
pub async fn per_key_with_status(
    db: &Database,
    since_ms: i64,
    now_ms: i64,
    status_code: i32,
) -> Result<BTreeMap<(i64, String), i64>, DbError> {
    let mut counts: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for range in ranges(since_ms, now_ms) {
        let rows: Vec<(i64, String, i64)> = with_connection!(db, |conn| {
            in_range!(range)
                .filter(r::status_code.eq(status_code))
                .filter(r::key_id.gt(0))
                .group_by((r::key_id, r::key_masked))
                .select((r::key_id, r::key_masked, total!("calls")))
                .load(conn)
                .await?
        });
        for (key_id, key_masked, calls) in rows {
            *counts.entry((key_id, key_masked)).or_default() += calls;
        }
    }
    Ok(counts)
}

/// One key's attempts per model.
pub async fn per_model_of_key(
    db: &Database,
    key_id: i64,
    since_ms: i64,
    now_ms: i64,
) -> Result<BTreeMap<String, Sums>, DbError> {
    let mut models: BTreeMap<String, Sums> = BTreeMap::new();
    for range in ranges(since_ms, now_ms) {
        let rows: Vec<(String, SumsRow)> = with_connection!(db, |conn| {
            in_range!(range)
                .filter(r::key_id.eq(key_id))
                .group_by(r::model_name)
                .select((r::model_name, sums!()))
                .load(conn)
                .await?
        });
        for (model, sums) in rows {
            models.entry(model).or_default().add(&sums_of(sums));
        }
    }
    Ok(models)
}

/// Successful attempts' calls and tokens per bucket start and group: the client (`by_client`)
/// or the key (id, masked value).
pub struct TokenRow {
    pub bucket_ms: i64,
    pub group: String,
    pub key_id: i64,
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

pub async fn successes_per_bucket(
    db: &Database,
    since_ms: i64,
    now_ms: i64,
    by_client: bool,
) -> Result<Vec<TokenRow>, DbError> {
    let mut out = Vec::new();
    for range in ranges(since_ms, now_ms) {
        out.extend(successes_in(db, range, by_client).await?);
    }
    Ok(out)
}

async fn successes_in(
    db: &Database,
    range: Range,
    by_client: bool,
) -> Result<Vec<TokenRow>, DbError> {
    let totals = (
        total!("successes"),
        total!("prompt_tokens"),
        total!("completion_tokens"),
    );
    /// Bucket start, group, key id, (successes, prompt tokens, completion tokens).
    type Row = (i64, String, i64, (i64, i64, i64));
    let rows: Vec<Row> = with_connection!(db, |conn| {
        let successes = in_range!(range).filter(r::status_code.between(200, 299));
        if by_client {
            successes
                .group_by((r::bucket_ms, r::client))
                .select((
                    r::bucket_ms,
                    r::client,
                    sql::<BigInt>("CAST(0 AS BIGINT)"),
                    totals,
                ))
                .load(conn)
                .await?
        } else {
            successes
                .group_by((r::bucket_ms, r::key_masked, r::key_id))
                .select((r::bucket_ms, r::key_masked, r::key_id, totals))
                .load(conn)
                .await?
        }
    });
    Ok(rows
        .into_iter()
        .map(
            |(bucket_ms, group, key_id, (calls, prompt_tokens, completion_tokens))| TokenRow {
                bucket_ms,
                group,
                key_id,
                calls,
                prompt_tokens,
                completion_tokens,
            },
        )
        .collect())
}

/// Deletes the buckets past their keeping: minutes and hours after their fixed time, days with
/// the request logs (`days_before_ms`, when request logs are deleted at all).
pub async fn delete_old_buckets(
    db: &Database,
    now_ms: i64,
    days_before_ms: Option<i64>,
) -> Result<u64, DbError> {
    use crate::rollups::{DAY_S, HOUR_BUCKETS_KEPT_MS, HOUR_S, MINUTE_BUCKETS_KEPT_MS, MINUTE_S};
    let mut cutoffs = vec![
        (MINUTE_S, now_ms - MINUTE_BUCKETS_KEPT_MS),
        (HOUR_S, now_ms - HOUR_BUCKETS_KEPT_MS),
    ];
    if let Some(before) = days_before_ms {
        cutoffs.push((DAY_S, before));
    }
    let mut deleted = 0;
    for (width, before) in cutoffs {
        let count = with_connection!(db, |conn| {
            diesel::delete(
                r::table
                    .filter(r::width_s.eq(width))
                    .filter(r::bucket_ms.lt(before)),
            )
            .execute(conn)
            .await?
        });
        deleted += count as u64;
    }
    Ok(deleted)
}
