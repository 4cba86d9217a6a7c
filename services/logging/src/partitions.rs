//! The day partitions of `request_logs` on Postgres (SQLite keeps one table): made ahead, so
//! that every row lands in its day's partition, and dropped whole once retention passes their
//! day, instead of deleting their rows one by one.
//!
//! A day's partition is `request_logs_pYYYYMMDD`, covering that UTC day. The rows from before
//! partitioning are `request_logs_before` (everything older than the day after the upgrade) and
//! a row that no day covers (a clock far off) goes to `request_logs_default`: retention deletes
//! the old rows of both like before.

use chrono::{Duration, NaiveDate};
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use gb_runtime::database::{Database, DbError};
use gb_runtime::time::from_ms;

/// Days made ahead of today (today included).
const DAYS_AHEAD: i64 = 3;

fn name_of(day: NaiveDate) -> String {
    format!("request_logs_p{}", day.format("%Y%m%d"))
}

fn day_of(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("request_logs_p")?, "%Y%m%d").ok()
}

/// Makes the partitions of today and the next days where missing. A day that another partition
/// already covers (the rows from before partitioning reach into tomorrow) is left to it.
pub async fn ensure(db: &Database, now_ms: i64) -> Result<usize, DbError> {
    let Database::Postgres(pool) = db else {
        return Ok(0);
    };
    let mut conn = pool.get().await?;
    let today = from_ms(now_ms).date();
    let mut made = 0;
    for ahead in 0..DAYS_AHEAD {
        let day = today + Duration::days(ahead);
        let statement = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF request_logs FOR VALUES FROM ('{day}') TO ('{}')",
            name_of(day),
            day + Duration::days(1),
        );
        match sql_query(statement).execute(&mut conn).await {
            Ok(_) => made += 1,
            // "would overlap": an older partition covers the day.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("overlap") =>
            {
                tracing::debug!(%day, "the day is covered by an older partition");
            }
            Err(error) => {
                // Rows of that day are already in the default partition: they stay there (and
                // are deleted by time), the day's partition cannot be made.
                tracing::warn!(%day, %error, "a day partition of request_logs could not be made");
            }
        }
    }
    Ok(made)
}

#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = Text)]
    name: String,
    /// Postgres' estimate of its rows; -1 before it was first analyzed.
    #[diesel(sql_type = BigInt)]
    estimated_rows: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// Drops the day partitions whose whole day is before `before_ms`; returns the rows they held
/// (Postgres' estimate for a partition it has analyzed, a count otherwise).
pub async fn drop_older(db: &Database, before_ms: i64) -> Result<u64, DbError> {
    let Database::Postgres(pool) = db else {
        return Ok(0);
    };
    let mut conn = pool.get().await?;
    let partitions: Vec<Partition> = sql_query(
        "SELECT c.relname::text AS name, c.reltuples::bigint AS estimated_rows \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'request_logs'::regclass",
    )
    .load(&mut conn)
    .await?;
    let cutoff = from_ms(before_ms);
    let mut rows = 0;
    for partition in partitions {
        let Some(day) = day_of(&partition.name) else {
            continue;
        };
        let end = (day + Duration::days(1)).and_hms_opt(0, 0, 0);
        if end.is_none_or(|end| end > cutoff) {
            continue;
        }
        let held = if partition.estimated_rows >= 0 {
            partition.estimated_rows
        } else {
            sql_query(format!("SELECT count(*) AS rows FROM {}", partition.name))
                .get_result::<Count>(&mut conn)
                .await?
                .rows
        };
        sql_query(format!("DROP TABLE {}", partition.name))
            .execute(&mut conn)
            .await?;
        tracing::info!(
            partition = partition.name,
            rows = held,
            "old request-log partition dropped"
        );
        rows += u64::try_from(held).unwrap_or(0);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_named_by_its_day() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(name_of(day), "request_logs_p20261201");
        assert_eq!(day_of(&name_of(day)), Some(day));
        assert_eq!(day_of("request_logs_before"), None);
        assert_eq!(day_of("request_logs_default"), None);
    }
}
