//! One key's state and the rules that move it: the key-pool semantics of DESIGN.md, as pure
//! functions over [`KeyEntry`] so that they are tested without a database.

use std::collections::BTreeMap;
use std::sync::Arc;

use gb_proto::keys::v1 as pb;
use gb_runtime::secrets::mask_key;

/// When the upstream gives no `RetryInfo` on a 429, the key rests this long (the one rule,
/// in `gb-upstream`, that the chat replicas apply locally too).
pub const DEFAULT_COOLDOWN_MS: i64 = gb_upstream::DEFAULT_COOLDOWN.as_millis() as i64;

/// The stored status; "cooling down" is derived from `cooldown_until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredStatus {
    Active,
    Disabled,
}

impl StoredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Active => "active",
            StoredStatus::Disabled => "disabled",
        }
    }

    /// The status a stored value names; `None` for a value that is not one (never guessed).
    pub fn parse(value: &str) -> Option<Self> {
        [StoredStatus::Active, StoredStatus::Disabled]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub id: i64,
    pub value: Arc<str>,
    pub key_type: String,
    pub create_time_ms: i64,
    pub status: StoredStatus,
    pub failure_count: u32,
    pub cooldown_until_ms: i64,
    pub last_error: Option<String>,
    pub last_used_ms: i64,
    pub success_count: u64,
    pub failure_total: u64,
    /// Model → until when (Unix ms) the key rests for that model alone: it spent that
    /// model's quota and still serves the others. Past entries are dropped as outcomes come.
    pub model_cooldowns: BTreeMap<String, i64>,
    /// When the key was last reset or re-checked (memory only): outcomes of attempts made
    /// before that moment no longer change its state.
    pub reset_at_ms: i64,
}

/// What an outcome changed: the stored row, and (more rarely) what the chat replicas see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub stored: bool,
    pub visible: bool,
}

impl KeyEntry {
    pub fn status_at(&self, now_ms: i64) -> pb::KeyStatus {
        match self.status {
            StoredStatus::Disabled => pb::KeyStatus::Disabled,
            StoredStatus::Active if self.cooldown_until_ms > now_ms => pb::KeyStatus::CoolingDown,
            StoredStatus::Active => pb::KeyStatus::Active,
        }
    }

    /// What the chat replicas need: the value, and whether and until when it may be used.
    pub fn to_pool_key(&self) -> pb::PoolKey {
        pb::PoolKey {
            id: self.id,
            value: self.value.to_string(),
            status: match self.status {
                StoredStatus::Active => pb::KeyStatus::Active,
                StoredStatus::Disabled => pb::KeyStatus::Disabled,
            }
            .into(),
            cooldown_until_ms: self.cooldown_until_ms,
            key_type: self.key_type.clone(),
            model_cooldowns: self.model_cooldowns_after(i64::MIN),
        }
    }

    /// The model cooldowns that end after `now_ms`.
    pub fn model_cooldowns_after(&self, now_ms: i64) -> Vec<pb::ModelCooldown> {
        self.model_cooldowns
            .iter()
            .filter(|(_, until_ms)| **until_ms > now_ms)
            .map(|(model, until_ms)| pb::ModelCooldown {
                model: model.clone(),
                until_ms: *until_ms,
            })
            .collect()
    }

    /// What administrators see: never the value.
    pub fn to_admin_key(&self, now_ms: i64) -> pb::Key {
        pb::Key {
            id: self.id,
            masked_value: mask_key(&self.value),
            key_type: self.key_type.clone(),
            status: self.status_at(now_ms).into(),
            failure_count: self.failure_count,
            cooldown_until_ms: if self.cooldown_until_ms > now_ms {
                self.cooldown_until_ms
            } else {
                0
            },
            last_error: self.last_error.clone().unwrap_or_default(),
            last_used_ms: self.last_used_ms,
            success_count: self.success_count,
            failure_total: self.failure_total,
            create_time_ms: self.create_time_ms,
            model_cooldowns: self.model_cooldowns_after(now_ms),
        }
    }

    /// Applies one upstream attempt's outcome.
    pub fn apply_outcome(&mut self, outcome: &pb::Outcome, max_failures: u32) -> Change {
        let before = (self.status, self.cooldown_until_ms);
        let models_before = self.model_cooldowns.len();
        let mut model_cooled = false;
        let at_ms = outcome.at_ms;
        if at_ms < self.reset_at_ms {
            // Reported after a reset, made before it: the reset wins.
            return Change::default();
        }
        self.last_used_ms = self.last_used_ms.max(at_ms);
        match pb::OutcomeClass::try_from(outcome.class).unwrap_or(pb::OutcomeClass::Unspecified) {
            pb::OutcomeClass::Success => {
                self.success_count += 1;
                self.failure_count = 0;
                self.last_error = None;
            }
            pb::OutcomeClass::ClientError | pb::OutcomeClass::Unspecified => {}
            pb::OutcomeClass::DeadKey => {
                self.failure_total += 1;
                self.status = StoredStatus::Disabled;
                self.last_error = Some(outcome.error.clone());
            }
            pb::OutcomeClass::Quota => {
                self.failure_total += 1;
                let until_ms = if outcome.cooldown_until_ms > 0 {
                    outcome.cooldown_until_ms
                } else if outcome.retry_after_ms > 0 {
                    at_ms + i64::from(outcome.retry_after_ms)
                } else {
                    at_ms + DEFAULT_COOLDOWN_MS
                };
                if outcome.quota_model.is_empty() {
                    self.cooldown_until_ms = self.cooldown_until_ms.max(until_ms);
                } else {
                    let cooling = self
                        .model_cooldowns
                        .entry(outcome.quota_model.clone())
                        .or_insert(0);
                    model_cooled = until_ms > *cooling;
                    *cooling = (*cooling).max(until_ms);
                }
                self.last_error = Some(outcome.error.clone());
            }
            pb::OutcomeClass::Transient => {
                self.failure_total += 1;
                self.failure_count += 1;
                self.last_error = Some(outcome.error.clone());
                if self.failure_count >= max_failures {
                    self.status = StoredStatus::Disabled;
                }
            }
        }
        self.model_cooldowns.retain(|_, until_ms| *until_ms > at_ms);
        Change {
            stored: true,
            visible: before != (self.status, self.cooldown_until_ms)
                || model_cooled
                || models_before != self.model_cooldowns.len(),
        }
    }

    /// Back to service: failures forgotten, cooldown and disabled state cleared.
    pub fn reset(&mut self, now_ms: i64) -> Change {
        self.reset_at_ms = now_ms;
        self.status = StoredStatus::Active;
        self.failure_count = 0;
        self.cooldown_until_ms = 0;
        self.model_cooldowns.clear();
        self.last_error = None;
        // Always pushed: a chat replica may have marked the key on its own (a 429 it saw before
        // the keys service heard of it), and the reset must clear that too.
        Change {
            stored: true,
            visible: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_stored_status_is_no_status() {
        assert_eq!(
            StoredStatus::parse("disabled"),
            Some(StoredStatus::Disabled)
        );
        assert_eq!(StoredStatus::parse("active"), Some(StoredStatus::Active));
        assert_eq!(StoredStatus::parse("Disabled "), None);
        assert_eq!(StoredStatus::parse(""), None);
    }

    fn entry() -> KeyEntry {
        KeyEntry {
            id: 1,
            value: "AIzaSyTestTestTestTestTestTestTest0001".into(),
            key_type: "gemini".into(),
            create_time_ms: 0,
            status: StoredStatus::Active,
            failure_count: 0,
            cooldown_until_ms: 0,
            last_error: None,
            last_used_ms: 0,
            success_count: 0,
            failure_total: 0,
            model_cooldowns: BTreeMap::new(),
            reset_at_ms: 0,
        }
    }

    fn outcome(class: pb::OutcomeClass, retry_after_ms: u32) -> pb::Outcome {
        pb::Outcome {
            key_id: 1,
            class: class.into(),
            retry_after_ms,
            at_ms: 1_000,
            error: "e".into(),
            ..Default::default()
        }
    }

    #[test]
    fn dead_key_is_disabled_at_once() {
        let mut key = entry();
        assert!(
            key.apply_outcome(&outcome(pb::OutcomeClass::DeadKey, 0), 3)
                .visible
        );
        assert_eq!(key.status_at(1_000), pb::KeyStatus::Disabled);
    }

    #[test]
    fn quota_cools_down_for_the_retry_delay_or_the_default() {
        let mut key = entry();
        key.apply_outcome(&outcome(pb::OutcomeClass::Quota, 5_000), 3);
        assert_eq!(key.cooldown_until_ms, 6_000);
        assert_eq!(key.status_at(5_999), pb::KeyStatus::CoolingDown);
        assert_eq!(key.status_at(6_000), pb::KeyStatus::Active);
        assert_eq!(
            key.failure_count, 0,
            "a quota error is not a failure of the key"
        );
        let mut other = entry();
        other.apply_outcome(&outcome(pb::OutcomeClass::Quota, 0), 3);
        assert_eq!(other.cooldown_until_ms, 1_000 + DEFAULT_COOLDOWN_MS);
    }

    #[test]
    fn a_models_quota_cools_that_model_alone_until_its_reset() {
        let mut key = entry();
        let daily = pb::Outcome {
            quota_model: "gemini-2.5-pro".into(),
            cooldown_until_ms: 86_400_000,
            ..outcome(pb::OutcomeClass::Quota, 17_000)
        };
        assert!(key.apply_outcome(&daily, 3).visible);
        assert_eq!(key.cooldown_until_ms, 0, "the key itself is not cooling");
        assert_eq!(key.status_at(2_000), pb::KeyStatus::Active);
        assert_eq!(
            key.to_pool_key().model_cooldowns,
            vec![pb::ModelCooldown {
                model: "gemini-2.5-pro".into(),
                until_ms: 86_400_000
            }],
            "until the reset, not RetryInfo's delay"
        );
        let per_minute = pb::Outcome {
            quota_model: "gemini-2.5-flash".into(),
            ..outcome(pb::OutcomeClass::Quota, 30_000)
        };
        key.apply_outcome(&per_minute, 3);
        assert_eq!(key.model_cooldowns["gemini-2.5-flash"], 31_000);
        // The same quota again changes nothing the replicas see.
        assert!(!key.apply_outcome(&daily, 3).visible);
        // Past their time, cooldowns are dropped as the next outcome comes.
        let later = pb::Outcome {
            at_ms: 86_400_000,
            ..outcome(pb::OutcomeClass::Success, 0)
        };
        assert!(key.apply_outcome(&later, 3).visible);
        assert!(key.model_cooldowns.is_empty());
        assert!(key.to_admin_key(86_400_000).model_cooldowns.is_empty());
        key.apply_outcome(&daily, 3);
        key.reset(2_000);
        assert!(key.model_cooldowns.is_empty(), "a reset clears them");
    }

    #[test]
    fn max_failures_in_a_row_disable_and_success_resets() {
        let mut key = entry();
        key.apply_outcome(&outcome(pb::OutcomeClass::Transient, 0), 3);
        key.apply_outcome(&outcome(pb::OutcomeClass::Transient, 0), 3);
        key.apply_outcome(&outcome(pb::OutcomeClass::Success, 0), 3);
        assert_eq!(key.failure_count, 0);
        key.apply_outcome(&outcome(pb::OutcomeClass::Transient, 0), 3);
        key.apply_outcome(&outcome(pb::OutcomeClass::Transient, 0), 3);
        assert_eq!(key.status, StoredStatus::Active);
        let change = key.apply_outcome(&outcome(pb::OutcomeClass::Transient, 0), 3);
        assert!(change.visible);
        assert_eq!(key.status, StoredStatus::Disabled);
        assert_eq!(key.failure_total, 5);
    }

    #[test]
    fn client_errors_do_not_count() {
        let mut key = entry();
        let change = key.apply_outcome(&outcome(pb::OutcomeClass::ClientError, 0), 1);
        assert!(!change.visible);
        assert_eq!((key.failure_count, key.failure_total), (0, 0));
    }

    #[test]
    fn reset_clears_everything() {
        let mut key = entry();
        key.apply_outcome(&outcome(pb::OutcomeClass::DeadKey, 0), 3);
        key.apply_outcome(&outcome(pb::OutcomeClass::Quota, 0), 3);
        key.reset(1_500);
        assert_eq!(key.status_at(2_000), pb::KeyStatus::Active);
        assert_eq!(key.failure_count, 0);
    }

    #[test]
    fn outcomes_from_before_a_reset_are_ignored() {
        let mut key = entry();
        key.reset(5_000);
        // Made at 1_000, reported late: it must not undo the reset.
        assert_eq!(
            key.apply_outcome(&outcome(pb::OutcomeClass::DeadKey, 0), 3),
            Change::default()
        );
        assert_eq!(key.status, StoredStatus::Active);
    }

    #[test]
    fn admin_view_masks_the_value() {
        let admin = entry().to_admin_key(0);
        assert_eq!(admin.masked_value, "AIzaSy…0001");
    }
}
