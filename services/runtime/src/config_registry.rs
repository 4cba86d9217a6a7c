//! Which settings the config service holds: their names, value kinds and whether they are
//! secret; how a value is shown (secrets masked), and how an API value becomes the environment's
//! text form that [`Settings::with_overrides`] parses (so one parser validates both sources).
//!
//! Editable settings change while the services run. The few that are not (the admin token,
//! the encryption key, the database) are listed, masked, for reading only: they are read from
//! the environment at start.

use serde_json::{Value, json};

use crate::secrets::mask_key;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    /// A list of strings (`["a","b"]` or `a,b`).
    List,
    /// Any JSON object or array (`SAFETY_SETTINGS`, `THINKING_BUDGET_MAP`, `CUSTOM_HEADERS`).
    Json,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::List => "list",
            Kind::Json => "object",
        }
    }
}

/// How a secret is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    No,
    /// Each value (or each list item, or each object value) as `AIzaSy…a1b2`.
    Masked,
    /// URLs with their passwords replaced (proxies, the database).
    UrlPassword,
    /// Only whether it is set.
    Hidden,
}

#[derive(Clone, Copy, Debug)]
pub struct ConfigSetting {
    pub name: &'static str,
    pub kind: Kind,
    pub secret: Secret,
    /// Changeable through the API while running; otherwise read from the environment only.
    pub editable: bool,
}

const fn editable(name: &'static str, kind: Kind) -> ConfigSetting {
    ConfigSetting {
        name,
        kind,
        secret: Secret::No,
        editable: true,
    }
}

const fn secret(name: &'static str, kind: Kind, secret: Secret) -> ConfigSetting {
    ConfigSetting {
        name,
        kind,
        secret,
        editable: true,
    }
}

const fn environment_only(name: &'static str, secret: Secret) -> ConfigSetting {
    ConfigSetting {
        name,
        kind: Kind::String,
        secret,
        editable: false,
    }
}

/// Every setting the config service lists, in the order the API shows them.
pub const CONFIG_SETTINGS: &[ConfigSetting] = &[
    secret("API_KEYS", Kind::List, Secret::Masked),
    secret("ALLOWED_TOKENS", Kind::List, Secret::Masked),
    environment_only("AUTH_TOKEN", Secret::Masked),
    editable("BASE_URL", Kind::String),
    editable("MAX_FAILURES", Kind::Integer),
    editable("MAX_RETRIES", Kind::Integer),
    editable("TIME_OUT", Kind::Number),
    editable("TEST_MODEL", Kind::String),
    editable("CHECK_INTERVAL_HOURS", Kind::Number),
    secret("PROXIES", Kind::List, Secret::UrlPassword),
    secret("CUSTOM_HEADERS", Kind::Json, Secret::Masked),
    editable("FILTERED_MODELS", Kind::List),
    editable("CHAT_MODEL", Kind::String),
    editable("SEARCH_MODELS", Kind::List),
    editable("IMAGE_MODELS", Kind::List),
    editable("THINKING_MODELS", Kind::List),
    editable("THINKING_BUDGET_MAP", Kind::Json),
    editable("SHOW_THINKING_PROCESS", Kind::Boolean),
    editable("SAFETY_SETTINGS", Kind::Json),
    editable("TOOLS_CODE_EXECUTION_ENABLED", Kind::Boolean),
    editable("URL_CONTEXT_ENABLED", Kind::Boolean),
    editable("URL_CONTEXT_MODELS", Kind::List),
    editable("SHOW_SEARCH_LINK", Kind::Boolean),
    editable("FAKE_STREAM_ENABLED", Kind::Boolean),
    editable("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", Kind::Number),
    editable("TTS_MODEL", Kind::String),
    editable("TTS_VOICE_NAME", Kind::String),
    editable("TTS_SPEED", Kind::String),
    secret("PAID_KEY", Kind::String, Secret::Masked),
    editable("CREATE_IMAGE_MODEL", Kind::String),
    editable("FETCH_PRIVATE_URLS", Kind::Boolean),
    editable("LOG_LEVEL", Kind::String),
    editable("ERROR_LOG_RECORD_REQUEST_BODY", Kind::Boolean),
    editable("AUTO_DELETE_ERROR_LOGS_ENABLED", Kind::Boolean),
    editable("AUTO_DELETE_ERROR_LOGS_DAYS", Kind::Integer),
    editable("AUTO_DELETE_REQUEST_LOGS_ENABLED", Kind::Boolean),
    editable("AUTO_DELETE_REQUEST_LOGS_DAYS", Kind::Integer),
    environment_only("ENCRYPTION_KEY", Secret::Hidden),
    environment_only("DATABASE_URL", Secret::UrlPassword),
];

pub fn find(name: &str) -> Option<&'static ConfigSetting> {
    CONFIG_SETTINGS.iter().find(|setting| setting.name == name)
}

impl Settings {
    /// A setting's effective value as JSON, unmasked; `Null` for an unknown name.
    pub fn config_value(&self, name: &str) -> Value {
        let seconds = |duration: std::time::Duration| json!(duration.as_secs_f64());
        match name {
            "API_KEYS" => json!(self.api_keys),
            "ALLOWED_TOKENS" => json!(self.allowed_tokens),
            "AUTH_TOKEN" => json!(self.auth_token.clone().unwrap_or_default()),
            "BASE_URL" => json!(self.base_url),
            "MAX_FAILURES" => json!(self.max_failures),
            "MAX_RETRIES" => json!(self.max_retries),
            "TIME_OUT" => seconds(self.time_out),
            "TEST_MODEL" => json!(self.test_model),
            "CHECK_INTERVAL_HOURS" => json!(
                self.check_interval
                    .map_or(0.0, |interval| interval.as_secs_f64() / 3600.0)
            ),
            "PROXIES" => json!(self.proxies),
            "CUSTOM_HEADERS" => json!(self.custom_headers),
            "FILTERED_MODELS" => json!(self.filtered_models),
            "CHAT_MODEL" => json!(self.chat_model),
            "SEARCH_MODELS" => json!(self.search_models),
            "IMAGE_MODELS" => json!(self.image_models),
            "THINKING_MODELS" => json!(self.thinking_models),
            "THINKING_BUDGET_MAP" => json!(self.thinking_budget_map),
            "SHOW_THINKING_PROCESS" => json!(self.show_thinking_process),
            "SAFETY_SETTINGS" => json!(self.safety_settings),
            "TOOLS_CODE_EXECUTION_ENABLED" => json!(self.tools_code_execution_enabled),
            "URL_CONTEXT_ENABLED" => json!(self.url_context_enabled),
            "URL_CONTEXT_MODELS" => json!(self.url_context_models),
            "SHOW_SEARCH_LINK" => json!(self.show_search_link),
            "FAKE_STREAM_ENABLED" => json!(self.fake_stream_enabled),
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS" => {
                seconds(self.fake_stream_empty_data_interval)
            }
            "TTS_MODEL" => json!(self.tts_model),
            "TTS_VOICE_NAME" => json!(self.tts_voice_name),
            "TTS_SPEED" => json!(self.tts_speed),
            "PAID_KEY" => json!(self.paid_key.clone().unwrap_or_default()),
            "CREATE_IMAGE_MODEL" => json!(self.create_image_model),
            "FETCH_PRIVATE_URLS" => json!(self.fetch_private_urls),
            "LOG_LEVEL" => json!(self.log_level),
            "ERROR_LOG_RECORD_REQUEST_BODY" => json!(self.error_log_record_request_body),
            "AUTO_DELETE_ERROR_LOGS_ENABLED" => json!(self.error_log_retention.enabled),
            "AUTO_DELETE_ERROR_LOGS_DAYS" => json!(self.error_log_retention.days),
            "AUTO_DELETE_REQUEST_LOGS_ENABLED" => json!(self.request_log_retention.enabled),
            "AUTO_DELETE_REQUEST_LOGS_DAYS" => json!(self.request_log_retention.days),
            "ENCRYPTION_KEY" => json!(self.encryption_key.clone().unwrap_or_default()),
            "DATABASE_URL" => json!(match &self.database {
                crate::settings::DatabaseLocation::Postgres(url) => url.clone(),
                crate::settings::DatabaseLocation::Sqlite(path) =>
                    format!("sqlite://{}", path.display()),
            }),
            _ => Value::Null,
        }
    }
}

/// A URL with its password (if any) replaced by `***`.
pub fn mask_url_password(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => value.to_owned(),
    }
}

fn mask_string(secret: Secret, value: &str) -> String {
    match secret {
        Secret::No => value.to_owned(),
        _ if value.is_empty() => String::new(),
        Secret::Masked => mask_key(value),
        Secret::UrlPassword => mask_url_password(value),
        Secret::Hidden => "(set)".to_owned(),
    }
}

/// A value as it may be shown: every string in a secret masked.
pub fn masked(setting: &ConfigSetting, value: &Value) -> Value {
    if setting.secret == Secret::No {
        return value.clone();
    }
    match value {
        Value::String(text) => Value::String(mask_string(setting.secret, text)),
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
pub fn unmasked(setting: &ConfigSetting, new: Value, current: &Value) -> Value {
    if setting.secret == Secret::No {
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
            .find(|current| !current.is_empty() && mask_string(setting.secret, current) == text)
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
pub fn to_text(setting: &ConfigSetting, value: &Value) -> Result<Option<String>, String> {
    let wrong = |expected: &str| Err(format!("expected {expected}, got {value}"));
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
                wrong("a list of strings")
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

    fn setting(name: &str) -> &'static ConfigSetting {
        find(name).unwrap()
    }

    #[test]
    fn every_setting_has_a_value() -> Result<(), crate::settings::SettingError> {
        let settings = Settings::from_lookup(&|_| None)?;
        for config in CONFIG_SETTINGS {
            assert!(
                !settings.config_value(config.name).is_null(),
                "{} has no value",
                config.name
            );
        }
        Ok(())
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
        assert_eq!(shown[0], "http://user:***@proxy:8080/");
        assert_eq!(shown[1], "socks5://proxy:1080");
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
