//! `KEY_MODEL_LIMITS`: what Google allows one key per model (requests per minute, tokens per
//! minute, requests per day), so that the pool steps around a key before Google refuses it.
//!
//! The text form is a JSON object of model-name glob → limits, e.g.
//! `{"gemini-2.5-pro": {"rpm": 5, "tpm": 250000, "rpd": 100}, "paid:gemini-2.5-pro": {"rpm": 150}}`.
//! A glob may start with a key type and a colon (`free:`, `paid:`, any `key_type` the keys
//! carry): it then applies to keys of that type only, and wins over the globs without one. Among
//! the globs that match, the longest (the most specific) wins. A limit of 0 means that keys of
//! that kind never serve the model (Google gives some models no free tier).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::values::{Json, Kind, SettingValue};

/// The limits of one model on one kind of key; `None`: not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
}

impl ModelLimit {
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.rpd.is_none()
    }
}

struct Matcher {
    key_type: Option<String>,
    glob: globset::GlobMatcher,
    limit: ModelLimit,
}

#[derive(Clone, Default)]
pub struct KeyModelLimits {
    entries: BTreeMap<String, ModelLimit>,
    /// Those for a key type first, then the others; the longest glob first within each.
    matchers: std::sync::Arc<Vec<Matcher>>,
}

impl std::fmt::Debug for KeyModelLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyModelLimits")
            .field(&self.entries)
            .finish()
    }
}

impl PartialEq for KeyModelLimits {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl KeyModelLimits {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The limits of `model` on a key of `key_type`, if any glob names it.
    pub fn limit_for(&self, key_type: &str, model: &str) -> Option<ModelLimit> {
        self.matchers
            .iter()
            .filter(|matcher| {
                matcher
                    .key_type
                    .as_deref()
                    .is_none_or(|wanted| wanted.eq_ignore_ascii_case(key_type))
            })
            .find(|matcher| matcher.glob.is_match(model))
            .map(|matcher| matcher.limit)
    }

    fn compile(entries: BTreeMap<String, ModelLimit>) -> Result<Self, String> {
        let mut matchers = Vec::with_capacity(entries.len());
        for (pattern, limit) in &entries {
            if limit.is_unlimited() {
                return Err(format!("{pattern:?} sets none of rpm, tpm, rpd"));
            }
            let (key_type, glob) = match pattern.split_once(':') {
                Some((key_type, glob)) if !key_type.trim().is_empty() => {
                    (Some(key_type.trim().to_owned()), glob)
                }
                Some(_) => return Err(format!("{pattern:?}: an empty key type before ':'")),
                None => (None, pattern.as_str()),
            };
            let glob = globset::GlobBuilder::new(glob.trim())
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|error| format!("{pattern:?} is not a glob: {error}"))?;
            matchers.push(Matcher {
                key_type,
                glob: glob.compile_matcher(),
                limit: *limit,
            });
        }
        // Stable: equally specific globs keep their name order.
        matchers.sort_by_key(|matcher| {
            (
                matcher.key_type.is_none(),
                std::cmp::Reverse(matcher.glob.glob().glob().len()),
            )
        });
        Ok(KeyModelLimits {
            entries,
            matchers: std::sync::Arc::new(matchers),
        })
    }
}

impl SettingValue for KeyModelLimits {
    const KIND: Kind = Kind::Json;
    fn parse(text: &str) -> Result<Self, String> {
        let Json(entries) = Json::<BTreeMap<String, ModelLimit>>::parse(text)?;
        Self::compile(entries)
    }
    fn to_json(&self) -> Value {
        json!(self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> KeyModelLimits {
        match KeyModelLimits::parse(text) {
            Ok(limits) => limits,
            Err(why) => panic!("{text}: {why}"),
        }
    }

    #[test]
    fn the_most_specific_glob_wins_and_a_key_type_wins_over_none() {
        let table = limits(
            r#"{"gemini-2.5-*": {"rpm": 10}, "gemini-2.5-pro": {"rpm": 5, "rpd": 100},
                "paid:gemini-2.5-*": {"rpm": 1000}, "free:gemini-2.5-pro": {"rpd": 0}}"#,
        );
        let rpm = |key_type, model| table.limit_for(key_type, model).and_then(|limit| limit.rpm);
        assert_eq!(rpm("gemini", "gemini-2.5-pro"), Some(5));
        assert_eq!(rpm("gemini", "gemini-2.5-flash"), Some(10));
        assert_eq!(
            rpm("paid", "gemini-2.5-pro"),
            Some(1000),
            "the key type first"
        );
        assert_eq!(
            table.limit_for("FREE", "gemini-2.5-pro"),
            Some(ModelLimit {
                rpd: Some(0),
                ..Default::default()
            })
        );
        assert_eq!(table.limit_for("gemini", "gemini-2.0-flash"), None);
        assert_eq!(rpm("gemini", "GEMINI-2.5-PRO"), Some(5), "without case");
    }

    #[test]
    fn bad_tables_are_refused_with_the_entry_named() {
        for (text, names) in [
            (r#"{"gemini-2.5-pro": {}}"#, "gemini-2.5-pro"),
            (r#"{"gemini-2.5-pro": {"rpm": -1}}"#, "JSON"),
            (r#"{"gemini-2.5-pro": {"rps": 1}}"#, "rps"),
            (r#"{"[a": {"rpm": 1}}"#, "[a"),
            (r#"{":m": {"rpm": 1}}"#, "key type"),
            (r#"["gemini-2.5-pro"]"#, "JSON"),
        ] {
            match KeyModelLimits::parse(text) {
                Ok(_) => panic!("{text} was accepted"),
                Err(why) => assert!(why.contains(names), "{text}: {why}"),
            }
        }
        assert!(limits("").is_empty());
        assert_eq!(
            limits(r#"{"m": {"tpm": 7}}"#).to_json(),
            json!({"m": {"tpm": 7}})
        );
    }
}
