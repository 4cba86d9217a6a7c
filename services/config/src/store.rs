//! Reads and writes of the `configs` table, the same code on Postgres and SQLite.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gb_runtime::database::{Database, DbError};
use gb_runtime::with_connection;

use crate::schema::configs;

/// One stored setting.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = configs)]
pub struct StoredValue {
    pub key: String,
    pub value: String,
    /// The environment's value when this row was last reconciled with it.
    pub env_value: Option<String>,
    /// `environment` or `api`.
    pub source: String,
    pub updated_at: NaiveDateTime,
}

pub async fn load(db: &Database) -> Result<Vec<StoredValue>, DbError> {
    with_connection!(db, |conn| {
        Ok(configs::table
            .select(StoredValue::as_select())
            .order(configs::id)
            .load(conn)
            .await?)
    })
}

/// Inserts or replaces rows, by name.
pub async fn upsert(db: &Database, rows: &[StoredValue]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    with_connection!(db, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for row in rows {
                diesel::insert_into(configs::table)
                    .values(row)
                    .on_conflict(configs::key)
                    .do_update()
                    .set((
                        configs::value.eq(excluded(configs::value)),
                        configs::env_value.eq(excluded(configs::env_value)),
                        configs::source.eq(excluded(configs::source)),
                        configs::updated_at.eq(excluded(configs::updated_at)),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    })
}

pub async fn delete(db: &Database, names: &[String]) -> Result<(), DbError> {
    if names.is_empty() {
        return Ok(());
    }
    with_connection!(db, |conn| {
        diesel::delete(configs::table.filter(configs::key.eq_any(names)))
            .execute(conn)
            .await?;
        Ok(())
    })
}
