//! The stored settings in memory, their reconciliation with the environment at start-up, and
//! the changes the API makes. Every change is written to the table, then published.
//!
//! Precedence: a value set through the API stays in force, across restarts, until the
//! environment's value of that setting changes; a changed environment value wins at the next
//! start (and is logged). The environment beats `.env`; a reset goes back to the environment.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gb_proto::config::v1 as pb;
use gb_proto::config::{ConfigError, ConfigResult};
use gb_runtime::config_registry::{self, Declaration, listed, masked, to_text, unmasked};
use gb_runtime::database::Database;
use gb_runtime::secrets::KeyCipher;
use gb_runtime::settings::Settings;
use tokio::sync::{Mutex, watch};

use crate::store::{self, StoredValue};

pub const FROM_ENVIRONMENT: &str = "environment";
pub const FROM_API: &str = "api";

/// What every follower receives.
#[derive(Clone)]
pub struct Published {
    pub version: u64,
    pub values: HashMap<String, String>,
    /// The environment with the stored values laid over it.
    pub effective: Arc<Settings>,
}

pub struct StoredSettings {
    db: Database,
    cipher: KeyCipher,
    /// This service's environment (and defaults): what the stored values are laid over.
    environment: Settings,
    rows: Mutex<BTreeMap<String, StoredValue>>,
    /// Stored values that could not apply at start, with the reason; cleared when set again.
    not_applied: std::sync::Mutex<BTreeMap<String, String>>,
    published: watch::Sender<Published>,
}

fn row(name: &str, value: String, env_value: Option<String>, source: &str) -> StoredValue {
    StoredValue {
        key: name.to_owned(),
        value,
        env_value,
        source: source.to_owned(),
        updated_at: gb_runtime::time::now_stored(),
    }
}

fn invalid(error: impl std::fmt::Display) -> ConfigError {
    ConfigError::InvalidSetting(error.to_string())
}

impl StoredSettings {
    /// Loads the table and reconciles it with the environment.
    pub async fn open(db: Database, environment: Settings) -> anyhow::Result<Self> {
        let cipher = gb_runtime::secrets::resolve_cipher(&environment)?;
        let mut rows: BTreeMap<String, StoredValue> = store::load(&db, &cipher)
            .await?
            .into_iter()
            .map(|row| (row.key.clone(), row))
            .collect();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for setting in listed().filter(|setting| setting.is_editable()) {
            let env = environment
                .environment_value(setting.name)
                .map(str::to_owned);
            match (rows.get(setting.name), env) {
                (Some(stored), env) if stored.env_value == env => {}
                (Some(stored), Some(env)) => {
                    if stored.source == FROM_API {
                        tracing::info!(
                            setting = setting.name,
                            "the environment's value changed since the last start: it replaces the value set through the API"
                        );
                    }
                    changed.push(row(setting.name, env.clone(), Some(env), FROM_ENVIRONMENT));
                }
                (Some(stored), None) => {
                    if stored.source == FROM_API {
                        tracing::info!(
                            setting = setting.name,
                            "the setting left the environment since the last start: its default replaces the value set through the API"
                        );
                    }
                    removed.push(setting.name.to_owned());
                }
                (None, Some(env)) => {
                    changed.push(row(setting.name, env.clone(), Some(env), FROM_ENVIRONMENT));
                }
                (None, None) => {}
            }
        }
        // Rows of settings this version no longer knows are left alone, but not applied.
        rows.retain(|name, _| {
            config_registry::find(name).is_some_and(|setting| setting.is_editable())
        });
        store::upsert(&db, &cipher, &changed).await?;
        store::delete(&db, &removed).await?;
        for name in &removed {
            rows.remove(name);
        }
        for stored in changed {
            rows.insert(stored.key.clone(), stored);
        }
        // A stored value that cannot apply (an earlier version accepted it) must not stop the
        // start: its setting keeps the environment's value, and the API says why.
        let (effective, refused) = environment.with_applicable_overrides(&values_of(&rows));
        let mut not_applied = BTreeMap::new();
        for error in refused {
            tracing::error!(setting = error.name, %error, "the stored value cannot apply: the environment's value (or the default) is in force until it is set again");
            rows.remove(error.name);
            not_applied.insert(error.name.to_owned(), error.to_string());
        }
        let values = values_of(&rows);
        let effective = Arc::new(effective);
        let published = watch::channel(Published {
            version: 1,
            values,
            effective,
        })
        .0;
        Ok(StoredSettings {
            db,
            cipher,
            environment,
            rows: Mutex::new(rows),
            not_applied: std::sync::Mutex::new(not_applied),
            published,
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.published.subscribe()
    }

    fn effective(&self) -> Arc<Settings> {
        self.published.borrow().effective.clone()
    }

    /// Every listed setting, secrets masked.
    pub async fn list(&self) -> Vec<pb::ConfigEntry> {
        let rows = self.rows.lock().await;
        let effective = self.effective();
        listed()
            .map(|setting| self.entry(setting, &effective, rows.get(setting.name)))
            .collect()
    }

    pub async fn get(&self, name: &str) -> ConfigResult<pb::ConfigEntry> {
        let setting = config_registry::find(name)
            .ok_or_else(|| ConfigError::UnknownSetting(name.to_owned()))?;
        let rows = self.rows.lock().await;
        Ok(self.entry(setting, &self.effective(), rows.get(name)))
    }

    fn entry(
        &self,
        setting: &Declaration,
        effective: &Settings,
        stored: Option<&StoredValue>,
    ) -> pb::ConfigEntry {
        let source = match stored {
            Some(stored) if stored.source == FROM_API => pb::ConfigSource::Api,
            Some(_) => pb::ConfigSource::Environment,
            None if self.environment.environment_value(setting.name).is_some() => {
                pb::ConfigSource::Environment
            }
            None => pb::ConfigSource::Default,
        };
        pb::ConfigEntry {
            name: setting.name.to_owned(),
            value_json: masked(setting, &effective.config_value(setting.name)).to_string(),
            source: source.into(),
            secret: setting.is_secret(),
            kind: setting.kind.name().to_owned(),
            updated_at_ms: stored.map_or(0, |stored| gb_runtime::time::to_ms(stored.updated_at)),
            editable: setting.is_editable(),
            not_applied: self
                .not_applied
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(setting.name)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Sets several settings, all or none.
    pub async fn put(&self, values: HashMap<String, String>) -> ConfigResult<()> {
        if values.is_empty() {
            return Err(ConfigError::NothingGiven);
        }
        let mut rows = self.rows.lock().await;
        let effective = self.effective();
        let mut next = rows.clone();
        let mut names: Vec<&String> = values.keys().collect();
        names.sort();
        for name in names {
            let setting = config_registry::find(name)
                .ok_or_else(|| invalid(format!("setting {name}: unknown setting")))?;
            if !setting.is_editable() {
                return Err(invalid(format!(
                    "setting {name}: read from the environment only; change it there and restart"
                )));
            }
            let value: serde_json::Value = serde_json::from_str(&values[name])
                .map_err(|error| invalid(format!("setting {name}: not JSON: {error}")))?;
            let value = unmasked(setting, value, &effective.config_value(name));
            let text = to_text(setting, &value)
                .map_err(|why| invalid(format!("setting {name}: {why}")))?;
            let env = self.environment.environment_value(name).map(str::to_owned);
            match text {
                Some(text) if text.trim().is_empty() && !setting.default.is_empty() => {
                    return Err(invalid(format!(
                        "setting {name}: must not be empty (send null to go back to the environment's value or the default)"
                    )));
                }
                Some(text) => {
                    next.insert(name.clone(), row(name, text, env, FROM_API));
                }
                None => {
                    self.reset_one(&mut next, name);
                }
            }
        }
        self.commit(&mut rows, next).await?;
        drop(rows);
        let touched: Vec<String> = values.into_keys().collect();
        self.forget_not_applied(&touched).await
    }

    /// Settings set or reset since the start are no longer "not applied": a reset one's stale
    /// row goes from the table too (a set one's was replaced).
    async fn forget_not_applied(&self, names: &[String]) -> ConfigResult<()> {
        let stale: Vec<String> = {
            let mut not_applied = self
                .not_applied
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            names
                .iter()
                .filter(|name| not_applied.remove(name.as_str()).is_some())
                .cloned()
                .collect()
        };
        let rows = self.rows.lock().await;
        let stale: Vec<String> = stale
            .into_iter()
            .filter(|name| !rows.contains_key(name))
            .collect();
        store::delete(&self.db, &stale)
            .await
            .map_err(ConfigError::from)
    }

    /// Back to the environment for the named settings (all when none are named).
    pub async fn reset(&self, names: &[String]) -> ConfigResult<()> {
        let mut rows = self.rows.lock().await;
        let mut next = rows.clone();
        let all: Vec<String>;
        let names = if names.is_empty() {
            all = listed()
                .filter(|setting| setting.is_editable())
                .map(|setting| setting.name.to_owned())
                .collect();
            &all
        } else {
            names
        };
        for name in names {
            match config_registry::find(name) {
                Some(setting) if setting.is_editable() => self.reset_one(&mut next, name),
                Some(_) => {
                    return Err(invalid(format!(
                        "setting {name}: read from the environment only"
                    )));
                }
                None => return Err(invalid(format!("setting {name}: unknown setting"))),
            }
        }
        self.commit(&mut rows, next).await?;
        drop(rows);
        self.forget_not_applied(names).await
    }

    fn reset_one(&self, rows: &mut BTreeMap<String, StoredValue>, name: &str) {
        match self.environment.environment_value(name) {
            Some(env) => {
                rows.insert(
                    name.to_owned(),
                    row(name, env.to_owned(), Some(env.to_owned()), FROM_ENVIRONMENT),
                );
            }
            None => {
                rows.remove(name);
            }
        }
    }

    /// Validates the whole new set, writes the difference, publishes.
    async fn commit(
        &self,
        rows: &mut BTreeMap<String, StoredValue>,
        next: BTreeMap<String, StoredValue>,
    ) -> ConfigResult<()> {
        let values = values_of(&next);
        let effective = self.environment.with_overrides(&values).map_err(invalid)?;
        let changed: Vec<StoredValue> = next
            .values()
            .filter(|stored| {
                rows.get(&stored.key).is_none_or(|before| {
                    before.value != stored.value || before.source != stored.source
                })
            })
            .cloned()
            .collect();
        let removed: Vec<String> = rows
            .keys()
            .filter(|name| !next.contains_key(*name))
            .cloned()
            .collect();
        store::upsert(&self.db, &self.cipher, &changed)
            .await
            .map_err(ConfigError::from)?;
        store::delete(&self.db, &removed)
            .await
            .map_err(ConfigError::from)?;
        for stored in &changed {
            tracing::info!(setting = %stored.key, source = %stored.source, "setting changed");
        }
        for name in &removed {
            tracing::info!(setting = %name, "setting back to its default");
        }
        *rows = next;
        self.published.send_modify(|published| {
            published.version += 1;
            published.values = values;
            published.effective = Arc::new(effective);
        });
        Ok(())
    }
}

fn values_of(rows: &BTreeMap<String, StoredValue>) -> HashMap<String, String> {
    rows.values()
        .map(|stored| (stored.key.clone(), stored.value.clone()))
        .collect()
}
