//! What the config service holds, derived from the settings' one declaration
//! (`settings/mod.rs`): which settings it lists, how a value is shown (secrets masked), and
//! how an API value becomes the environment's text form that [`Settings::with_overrides`]
//! parses (so one parser validates both sources).
//!
//! Live settings change while the services run. The listed fixed ones (the admin token, the
//! encryption key, the database) are shown, masked, for reading only.

use serde_json::Value;

use crate::secrets::mask_key;
#[cfg(doc)]
use crate::settings::Settings;
pub use crate::settings::{Declaration, Kind, Secrecy, find};

/// Every setting the config service lists, in the order the API shows them.
pub fn listed() -> impl Iterator<Item = &'static Declaration> {
    crate::settings::DECLARATIONS
        .iter()
        .filter(|declaration| declaration.is_listed())
}

/// A URL with its credentials masked: the password (`user:***@host`), or a user given alone
/// (`***@host`, often a token). Works on the text, so that a URL that does not parse is masked
/// too.
pub fn mask_url_password(value: &str) -> String {
    let Some(scheme_end) = value.find("//") else {
        return value.to_owned();
    };
    let authority_start = scheme_end + 2;
    let rest = &value[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return value.to_owned();
    };
    let masked = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{masked}{}", &value[..authority_start], &rest[at..])
}

fn mask_string(secret: Secrecy, value: &str) -> String {
    match secret {
        Secrecy::No => value.to_owned(),
        _ if value.is_empty() => String::new(),
        Secrecy::Masked => mask_key(value),
        Secrecy::UrlPassword => mask_url_password(value),
        Secrecy::Hidden => "(set)".to_owned(),
    }
}

/// A value as it may be shown: every string in a secret masked.
pub fn masked(setting: &Declaration, value: &Value) -> Value {
    if !setting.is_secret() {
        return value.clone();
    }
    match value {
        Value::String(text) => Value::String(mask_string(setting.secrecy, text)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| masked(setting, item)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, item)| (name.clone(), masked(setting, item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A secret sent back as it was shown (masked) keeps its stored value: each masked string
/// that is the mask of a current one becomes that current one. Anything else is new.
pub fn unmasked(setting: &Declaration, new: Value, current: &Value) -> Value {
    if !setting.is_secret() {
        return new;
    }
    let currents: Vec<&str> = match current {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::Object(map) => map.values().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let restore = |text: String| -> String {
        currents
            .iter()
            .find(|current| !current.is_empty() && mask_string(setting.secrecy, current) == text)
            .map_or(text, |current| (*current).to_owned())
    };
    match new {
        Value::String(text) => Value::String(restore(text)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Value::String(restore(text)),
                    other => other,
                })
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, item)| match item {
                    Value::String(text) => (name, Value::String(restore(text))),
                    other => (name, other),
                })
                .collect(),
        ),
        other => other,
    }
}

/// An API value in the environment's text form; `None` for JSON `null` (back to the
/// environment or the default). The kind is checked here; the value itself by the parser.
pub fn to_text(setting: &Declaration, value: &Value) -> Result<Option<String>, String> {
    // The value is described, never quoted: it may be a secret.
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let wrong = |expected: &str| Err(format!("expected {expected}, got {got}"));
    match (setting.kind, value) {
        (_, Value::Null) => Ok(None),
        (Kind::String, Value::String(text)) => Ok(Some(text.clone())),
        (Kind::String, _) => wrong("a string"),
        (Kind::Integer | Kind::Number, Value::Number(number)) => Ok(Some(number.to_string())),
        (Kind::Integer | Kind::Number, Value::String(text)) => Ok(Some(text.clone())),
        (Kind::Integer, _) => wrong("an integer"),
        (Kind::Number, _) => wrong("a number"),
        (Kind::Boolean, Value::Bool(flag)) => Ok(Some(flag.to_string())),
        (Kind::Boolean, Value::String(text)) => Ok(Some(text.clone())),
        (Kind::Boolean, _) => wrong("true or false"),
        (Kind::List, Value::Array(items)) => {
            if items.iter().all(Value::is_string) {
                Ok(Some(value.to_string()))
            } else {
                Err("expected a list of strings, got an item that is not a string".to_owned())
            }
        }
        (Kind::List, Value::String(text)) => Ok(Some(text.clone())),
        (Kind::List, _) => wrong("a list of strings"),
        (Kind::Json, Value::Object(_) | Value::Array(_)) => Ok(Some(value.to_string())),
        (Kind::Json, Value::String(text)) => Ok(Some(text.clone())),
        (Kind::Json, _) => wrong("a JSON object or list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setting(name: &str) -> &'static Declaration {
        find(name).unwrap()
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_described_not_quoted() {
        let marker = "AIzaSyMarkerThatMustNotBeEchoed01234";
        for (name, value) in [
            ("API_KEYS", json!([marker, 5])),
            ("API_KEYS", json!({"key": marker})),
            ("PAID_KEY", json!([marker])),
            ("CUSTOM_HEADERS", json!(5)),
        ] {
            let refused = to_text(setting(name), &value).unwrap_err();
            assert!(!refused.contains(marker), "{name}: {refused}");
            assert!(refused.starts_with("expected"), "{name}: {refused}");
        }
    }

    #[test]
    fn the_listed_settings_are_the_live_and_fixed_ones() {
        let listed: Vec<&str> = listed().map(|setting| setting.name).collect();
        assert!(listed.contains(&"API_KEYS") && listed.contains(&"AUTH_TOKEN"));
        assert!(
            !listed.contains(&"GATEWAY_ADDR"),
            "process settings are not listed"
        );
        assert!(!setting("AUTH_TOKEN").is_editable());
        assert!(setting("MAX_RETRIES").is_editable());
    }

    #[test]
    fn a_masked_secret_sent_back_keeps_its_value() {
        let current = json!([
            "AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
            "AIzaSyBBBBBBBBBBBBBBBBBBBBBBBBBBBBB2"
        ]);
        let shown = masked(setting("API_KEYS"), &current);
        assert_eq!(shown[0], "AIzaSy…AAA1");
        let mut sent = shown.as_array().unwrap().clone();
        sent.push(json!("AIzaSyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC3"));
        let restored = unmasked(setting("API_KEYS"), Value::Array(sent), &current);
        assert_eq!(restored[0], current[0]);
        assert_eq!(restored[1], current[1]);
        assert_eq!(restored[2], "AIzaSyCCCCCCCCCCCCCCCCCCCCCCCCCCCCC3");
    }

    #[test]
    fn proxy_passwords_are_masked() {
        let shown = masked(
            setting("PROXIES"),
            &json!(["http://user:hunter2@proxy:8080", "socks5://proxy:1080"]),
        );
        assert_eq!(shown[0], "http://user:***@proxy:8080");
        assert_eq!(shown[1], "socks5://proxy:1080");
        for (unparsable, expected) in [
            ("http://user:hunter2@[bad", "http://user:***@[bad"),
            ("socks5://sk-token@proxy:99999", "socks5://***@proxy:99999"),
            ("https://a:b@c@host/path@x", "https://a:***@host/path@x"),
        ] {
            assert_eq!(mask_url_password(unparsable), expected);
        }
    }

    #[test]
    fn kinds_are_checked() {
        assert_eq!(
            to_text(setting("MAX_RETRIES"), &json!(5)),
            Ok(Some("5".into()))
        );
        assert!(to_text(setting("MAX_RETRIES"), &json!([5])).is_err());
        assert!(to_text(setting("API_KEYS"), &json!([1])).is_err());
        assert_eq!(
            to_text(setting("API_KEYS"), &json!(["a", "b"])),
            Ok(Some("[\"a\",\"b\"]".into()))
        );
        assert_eq!(to_text(setting("LOG_LEVEL"), &Value::Null), Ok(None));
    }
}
