//! Reads and writes of the `configs` table, the same code on Postgres and SQLite. The values
//! of secret settings (keys, tokens, proxies, headers) are stored encrypted (AES-256-GCM, the
//! key service's `ENCRYPTION_KEY`), as `enc:<ciphertext>`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gb_runtime::config_registry;
use gb_runtime::database::{Database, DbError};
use gb_runtime::secrets::KeyCipher;
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

const SEALED: &str = "enc:";

fn is_secret(name: &str) -> bool {
    config_registry::find(name).is_some_and(|setting| setting.is_secret())
}

fn seal(cipher: &KeyCipher, row: &StoredValue) -> StoredValue {
    if !is_secret(&row.key) {
        return row.clone();
    }
    let seal = |text: &str| format!("{SEALED}{}", cipher.encrypt(text));
    StoredValue {
        value: seal(&row.value),
        env_value: row.env_value.as_deref().map(seal),
        ..row.clone()
    }
}

fn open(cipher: &KeyCipher, row: StoredValue) -> Result<StoredValue, DbError> {
    let open = |text: String| match text.strip_prefix(SEALED) {
        Some(sealed) => cipher
            .decrypt(sealed)
            .map_err(|error| DbError::Migration(format!("setting {}: {error}", row.key))),
        None => Ok(text),
    };
    Ok(StoredValue {
        value: open(row.value.clone())?,
        env_value: row.env_value.clone().map(open).transpose()?,
        ..row
    })
}

pub async fn load(db: &Database, cipher: &KeyCipher) -> Result<Vec<StoredValue>, DbError> {
    let rows: Vec<StoredValue> = with_connection!(db, |conn| {
        configs::table
            .select(StoredValue::as_select())
            .order(configs::id)
            .load(conn)
            .await?
    });
    rows.into_iter().map(|row| open(cipher, row)).collect()
}

/// Inserts or replaces rows, by name.
pub async fn upsert(
    db: &Database,
    cipher: &KeyCipher,
    rows: &[StoredValue],
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<StoredValue> = rows.iter().map(|row| seal(cipher, row)).collect();
    let rows = &rows;
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
