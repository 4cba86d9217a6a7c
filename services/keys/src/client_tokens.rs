//! Managed client tokens (what LiteLLM calls virtual keys): created and revoked by the operator,
//! each with a name, the models it may use (globs), a request and token rate, and daily and
//! monthly token budgets. The value is shown once, at creation (or rotation), and never stored:
//! the table keeps its keyed fingerprint, which is all a gateway needs to recognise it. Every
//! gateway follows the whole list through `WatchClientTokens` and checks tokens locally.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gb_proto::keys::v1 as pb;
use gb_proto::keys::{KeysError, KeysResult};
use gb_runtime::database::{Database, DbError};
use gb_runtime::secrets::{KeyCipher, mask_key};
use gb_runtime::with_connection;
use rand::Rng;
use tokio::sync::watch;

use crate::schema::client_tokens;

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = client_tokens, treat_none_as_null = true)]
struct TokenRow {
    #[diesel(skip_insertion)]
    id: i64,
    name: String,
    token_hash: String,
    masked: String,
    caller: String,
    models: String,
    rpm: Option<i64>,
    tpm: Option<i64>,
    daily_token_budget: Option<i64>,
    monthly_token_budget: Option<i64>,
    expires_at: Option<i64>,
    enabled: bool,
    created_at: i64,
}

fn stored(limit: Option<u64>) -> Option<i64> {
    limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX))
}

fn loaded(limit: Option<i64>) -> Option<u64> {
    limit.map(|limit| u64::try_from(limit).unwrap_or(0))
}

impl TokenRow {
    fn to_proto(&self) -> Result<pb::ClientToken, DbError> {
        let models: Vec<String> = serde_json::from_str(&self.models).map_err(|error| {
            DbError::Migration(format!("client token {}: stored models: {error}", self.id))
        })?;
        Ok(pb::ClientToken {
            id: self.id,
            spec: Some(pb::ClientTokenSpec {
                name: self.name.clone(),
                models,
                rpm: loaded(self.rpm),
                tpm: loaded(self.tpm),
                daily_token_budget: loaded(self.daily_token_budget),
                monthly_token_budget: loaded(self.monthly_token_budget),
                expires_at_ms: self.expires_at,
            }),
            masked: self.masked.clone(),
            caller: self.caller.clone(),
            enabled: self.enabled,
            created_at_ms: self.created_at,
            fingerprint: self.token_hash.clone(),
        })
    }

    /// Applies a spec; the value's fields (hash, mask, caller) are not touched.
    fn set_spec(&mut self, spec: &pb::ClientTokenSpec) {
        self.name = spec.name.trim().to_owned();
        self.models = serde_json::to_string(&spec.models).unwrap_or_else(|_| "[]".into());
        self.rpm = stored(spec.rpm);
        self.tpm = stored(spec.tpm);
        self.daily_token_budget = stored(spec.daily_token_budget);
        self.monthly_token_budget = stored(spec.monthly_token_budget);
        self.expires_at = spec.expires_at_ms;
    }
}

/// A spec an operator may set: a name, model globs that compile.
fn validate(spec: &pb::ClientTokenSpec) -> KeysResult<()> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(KeysError::InvalidClientToken(
            "name: 1 to 128 characters are required".into(),
        ));
    }
    if spec.models.len() > 256 {
        return Err(KeysError::InvalidClientToken(
            "models: at most 256 globs".into(),
        ));
    }
    for model in &spec.models {
        if model.trim().is_empty() {
            return Err(KeysError::InvalidClientToken(
                "models: an empty glob".into(),
            ));
        }
        globset::Glob::new(model).map_err(|error| {
            KeysError::InvalidClientToken(format!("models: {model:?} is not a glob: {error}"))
        })?;
    }
    if spec.expires_at_ms.is_some_and(|at| at <= 0) {
        return Err(KeysError::InvalidClientToken(
            "expires_at: a time after 1970 is required".into(),
        ));
    }
    Ok(())
}

/// A new token value: `sk-gb-` and 40 random letters and digits (238 bits).
fn new_value() -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("sk-gb-{random}")
}

pub struct ClientTokens {
    db: Database,
    cipher: KeyCipher,
    /// Every token, as the gateways get it; replaced whole after each change.
    snapshot: watch::Sender<Arc<Vec<pb::ClientToken>>>,
    /// One change at a time, so that the snapshot follows the table's order.
    writer: tokio::sync::Mutex<()>,
}

impl ClientTokens {
    pub async fn open(db: Database, cipher: KeyCipher) -> Result<Arc<Self>, DbError> {
        let tokens = ClientTokens {
            db,
            cipher,
            snapshot: watch::channel(Arc::default()).0,
            writer: tokio::sync::Mutex::new(()),
        };
        tokens.reload().await?;
        Ok(Arc::new(tokens))
    }

    async fn reload(&self) -> Result<(), DbError> {
        let rows: Vec<TokenRow> = with_connection!(&self.db, |conn| {
            client_tokens::table
                .select(TokenRow::as_select())
                .order(client_tokens::id)
                .load(conn)
                .await?
        });
        let tokens = rows
            .iter()
            .map(TokenRow::to_proto)
            .collect::<Result<Vec<_>, _>>()?;
        self.snapshot.send_replace(Arc::new(tokens));
        Ok(())
    }

    /// The tokens now, and every later version.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<pb::ClientToken>>> {
        self.snapshot.subscribe()
    }

    /// The tokens as an operator sees them (no fingerprint).
    pub fn list(&self) -> Vec<pb::ClientToken> {
        self.snapshot
            .borrow()
            .iter()
            .map(|token| pb::ClientToken {
                fingerprint: String::new(),
                ..token.clone()
            })
            .collect()
    }

    fn find(&self, id: i64) -> KeysResult<pb::ClientToken> {
        self.list()
            .into_iter()
            .find(|token| token.id == id)
            .ok_or(KeysError::NoSuchClientToken)
    }

    fn issued(&self, row: &TokenRow, value: String) -> KeysResult<pb::IssuedClientToken> {
        let mut token = row.to_proto()?;
        token.fingerprint.clear();
        Ok(pb::IssuedClientToken {
            token: Some(token),
            value,
        })
    }

    pub async fn create(&self, spec: &pb::ClientTokenSpec) -> KeysResult<pb::IssuedClientToken> {
        validate(spec)?;
        let value = new_value();
        let mut row = TokenRow {
            id: 0,
            name: String::new(),
            token_hash: self.cipher.fingerprint(&value),
            masked: mask_key(&value),
            caller: self.cipher.caller_id(&value),
            models: String::new(),
            rpm: None,
            tpm: None,
            daily_token_budget: None,
            monthly_token_budget: None,
            expires_at: None,
            enabled: true,
            created_at: gb_runtime::now_ms(),
        };
        row.set_spec(spec);
        let _writing = self.writer.lock().await;
        let inserted = insert_row(&self.db, &row).await?;
        self.reload().await?;
        self.issued(&inserted, value)
    }

    pub async fn update(
        &self,
        update: &pb::UpdateClientTokenRequest,
    ) -> KeysResult<pb::ClientToken> {
        let _writing = self.writer.lock().await;
        let known = self.find(update.id)?;
        let mut spec = known.spec.unwrap_or_default();
        if let Some(name) = &update.name {
            spec.name = name.clone();
        }
        if update.set_models {
            spec.models = update.models.clone();
        }
        let change = |value: &mut Option<u64>, given: Option<u64>, clear: bool| {
            if clear {
                *value = None;
            } else if given.is_some() {
                *value = given;
            }
        };
        change(&mut spec.rpm, update.rpm, update.clear_rpm);
        change(&mut spec.tpm, update.tpm, update.clear_tpm);
        change(
            &mut spec.daily_token_budget,
            update.daily_token_budget,
            update.clear_daily_token_budget,
        );
        change(
            &mut spec.monthly_token_budget,
            update.monthly_token_budget,
            update.clear_monthly_token_budget,
        );
        if update.clear_expires_at {
            spec.expires_at_ms = None;
        } else if update.expires_at_ms.is_some() {
            spec.expires_at_ms = update.expires_at_ms;
        }
        validate(&spec)?;
        let enabled = update.enabled.unwrap_or(known.enabled);
        update_row(&self.db, update.id, &spec, enabled).await?;
        self.reload().await?;
        self.find(update.id)
    }

    /// Revokes a token: it stops working on every gateway as soon as they hear of it.
    pub async fn delete(&self, id: i64) -> KeysResult<bool> {
        let _writing = self.writer.lock().await;
        let deleted = delete_row(&self.db, id).await?;
        self.reload().await?;
        if !deleted {
            return Err(KeysError::NoSuchClientToken);
        }
        Ok(true)
    }

    /// A new value for the token (the old one stops working); its usage stays its own.
    pub async fn rotate(&self, id: i64) -> KeysResult<pb::IssuedClientToken> {
        let _writing = self.writer.lock().await;
        self.find(id)?;
        let value = new_value();
        let row = rotate_row(
            &self.db,
            id,
            &self.cipher.fingerprint(&value),
            &mask_key(&value),
        )
        .await?;
        self.reload().await?;
        self.issued(&row, value)
    }
}

async fn insert_row(db: &Database, row: &TokenRow) -> Result<TokenRow, DbError> {
    Ok(with_connection!(db, |conn| {
        diesel::insert_into(client_tokens::table)
            .values(row)
            .returning(TokenRow::as_returning())
            .get_result(conn)
            .await?
    }))
}

async fn update_row(
    db: &Database,
    id: i64,
    spec: &pb::ClientTokenSpec,
    enabled: bool,
) -> Result<(), DbError> {
    let models = serde_json::to_string(&spec.models).unwrap_or_else(|_| "[]".into());
    with_connection!(db, |conn| {
        diesel::update(client_tokens::table.find(id))
            .set((
                client_tokens::name.eq(spec.name.trim()),
                client_tokens::models.eq(&models),
                client_tokens::rpm.eq(stored(spec.rpm)),
                client_tokens::tpm.eq(stored(spec.tpm)),
                client_tokens::daily_token_budget.eq(stored(spec.daily_token_budget)),
                client_tokens::monthly_token_budget.eq(stored(spec.monthly_token_budget)),
                client_tokens::expires_at.eq(spec.expires_at_ms),
                client_tokens::enabled.eq(enabled),
            ))
            .execute(conn)
            .await?
    });
    Ok(())
}

async fn delete_row(db: &Database, id: i64) -> Result<bool, DbError> {
    let deleted = with_connection!(db, |conn| {
        diesel::delete(client_tokens::table.find(id))
            .execute(conn)
            .await?
    });
    Ok(deleted > 0)
}

async fn rotate_row(db: &Database, id: i64, hash: &str, masked: &str) -> Result<TokenRow, DbError> {
    Ok(with_connection!(db, |conn| {
        diesel::update(client_tokens::table.find(id))
            .set((
                client_tokens::token_hash.eq(hash),
                client_tokens::masked.eq(masked),
            ))
            .returning(TokenRow::as_returning())
            .get_result(conn)
            .await?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_and_values_are_long_and_random() {
        let spec = |name: &str, models: &[&str]| pb::ClientTokenSpec {
            name: name.into(),
            models: models.iter().map(|model| (*model).to_owned()).collect(),
            ..Default::default()
        };
        assert!(validate(&spec("team-a", &["gemini-2.5-*"])).is_ok());
        assert!(validate(&spec("  ", &[])).is_err());
        assert!(validate(&spec("team-a", &["[oops"])).is_err());
        assert!(validate(&spec("team-a", &[""])).is_err());
        let (one, two) = (new_value(), new_value());
        assert_ne!(one, two);
        assert_eq!(one.len(), "sk-gb-".len() + 40);
    }
}
