//! Reads and writes of the `keys` table, the same code on Postgres and SQLite.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gb_runtime::database::{Database, DbError};
use gb_runtime::secrets::KeyCipher;
use gb_runtime::with_connection;

use crate::schema::keys;
use crate::state::{KeyEntry, StoredStatus};

#[derive(Queryable, Selectable)]
#[diesel(table_name = keys)]
struct KeyRow {
    id: i64,
    key_value: String,
    key_type: String,
    create_time: NaiveDateTime,
    status: String,
    failure_count: i32,
    cooldown_until: Option<NaiveDateTime>,
    last_error: Option<String>,
    last_used: Option<NaiveDateTime>,
    success_count: i64,
    failure_total: i64,
    model_cooldowns: String,
}

#[derive(Insertable)]
#[diesel(table_name = keys)]
struct NewKeyRow<'a> {
    key_value: String,
    key_hash: String,
    key_type: &'a str,
    create_time: NaiveDateTime,
    status: &'a str,
}

/// The mutable state of one key, as written back after outcomes, checks and resets.
#[derive(AsChangeset)]
#[diesel(table_name = keys, treat_none_as_null = true)]
struct KeyStateChange {
    status: &'static str,
    failure_count: i32,
    cooldown_until: Option<NaiveDateTime>,
    last_error: Option<String>,
    last_used: Option<NaiveDateTime>,
    success_count: i64,
    failure_total: i64,
    model_cooldowns: String,
}

use gb_runtime::time::{now_stored, optional_from_ms as to_time, optional_to_ms as to_ms};

impl KeyRow {
    fn into_entry(self, cipher: &KeyCipher) -> Result<KeyEntry, DbError> {
        let value = cipher
            .decrypt(&self.key_value)
            .map_err(|error| DbError::Migration(format!("key {}: {error}", self.id)))?;
        Ok(KeyEntry {
            id: self.id,
            value: value.into(),
            key_type: self.key_type,
            create_time_ms: gb_runtime::time::to_ms(self.create_time),
            status: StoredStatus::parse(&self.status).ok_or_else(|| {
                DbError::Migration(format!(
                    "key {}: unknown stored status {:?}",
                    self.id, self.status
                ))
            })?,
            failure_count: u32::try_from(self.failure_count).unwrap_or(0),
            cooldown_until_ms: to_ms(self.cooldown_until),
            last_error: self.last_error,
            last_used_ms: to_ms(self.last_used),
            success_count: u64::try_from(self.success_count).unwrap_or(0),
            failure_total: u64::try_from(self.failure_total).unwrap_or(0),
            model_cooldowns: serde_json::from_str(&self.model_cooldowns).map_err(|error| {
                DbError::Migration(format!("key {}: stored model cooldowns: {error}", self.id))
            })?,
            reset_at_ms: 0,
        })
    }
}

/// Every stored key, decrypted.
pub async fn load_all(db: &Database, cipher: &KeyCipher) -> Result<Vec<KeyEntry>, DbError> {
    let rows: Vec<KeyRow> = with_connection!(db, |conn| {
        keys::table
            .select(KeyRow::as_select())
            .order(keys::id)
            .load(conn)
            .await?
    });
    rows.into_iter().map(|row| row.into_entry(cipher)).collect()
}

/// Stores a new key. `Ok(None)` when the same value is already stored.
pub async fn insert(
    db: &Database,
    cipher: &KeyCipher,
    value: &str,
    key_type: &str,
) -> Result<Option<KeyEntry>, DbError> {
    let new_row = NewKeyRow {
        key_value: cipher.encrypt(value),
        key_hash: cipher.fingerprint(value),
        key_type,
        create_time: now_stored(),
        status: StoredStatus::Active.as_str(),
    };
    let inserted: Vec<KeyRow> = with_connection!(db, |conn| {
        diesel::insert_into(keys::table)
            .values(&new_row)
            .on_conflict(keys::key_hash)
            .do_nothing()
            .returning(KeyRow::as_returning())
            .get_results(conn)
            .await?
    });
    inserted
        .into_iter()
        .next()
        .map(|row| row.into_entry(cipher))
        .transpose()
}

pub async fn delete(db: &Database, id: i64) -> Result<bool, DbError> {
    let deleted = with_connection!(db, |conn| {
        diesel::delete(keys::table.find(id)).execute(conn).await?
    });
    Ok(deleted > 0)
}

/// Writes the state of several keys in one transaction (one fsync on SQLite).
pub async fn save_states(db: &Database, entries: &[KeyEntry]) -> Result<(), DbError> {
    if entries.is_empty() {
        return Ok(());
    }
    let changes: Vec<(i64, KeyStateChange)> = entries
        .iter()
        .map(|entry| {
            (
                entry.id,
                KeyStateChange {
                    status: entry.status.as_str(),
                    failure_count: i32::try_from(entry.failure_count).unwrap_or(i32::MAX),
                    cooldown_until: to_time(entry.cooldown_until_ms),
                    last_error: entry.last_error.clone(),
                    last_used: to_time(entry.last_used_ms),
                    success_count: i64::try_from(entry.success_count).unwrap_or(i64::MAX),
                    failure_total: i64::try_from(entry.failure_total).unwrap_or(i64::MAX),
                    model_cooldowns: serde_json::to_string(&entry.model_cooldowns)
                        .unwrap_or_else(|_| "{}".to_owned()),
                },
            )
        })
        .collect();
    let changes = &changes;
    with_connection!(db, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for (id, change) in changes {
                diesel::update(keys::table.find(*id))
                    .set(change)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?
    });
    Ok(())
}
