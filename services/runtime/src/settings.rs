//! Settings, by gemini-balance's own environment names, read from the environment and from a
//! `.env` file in the working directory (the environment wins over the file).
//!
//! Lists accept gemini-balance's JSON form (`API_KEYS=["a","b"]`) and comma-separated values.
//! Every value is parsed and checked once, at start-up: a bad one stops the start with a message
//! that names the setting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Google's endpoint; `BASE_URL` replaces it (a mock in tests, a relay elsewhere).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// gemini-balance's five legacy models, hidden from listings and rejected.
const DEFAULT_FILTERED_MODELS: &[&str] = &[
    "gemini-1.0-pro-vision-latest",
    "gemini-pro-vision",
    "chat-bison-001",
    "text-bison-001",
    "embedding-gecko-001",
];

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {problem}")]
pub struct SettingError {
    pub name: &'static str,
    pub problem: String,
}

fn problem(name: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        name,
        problem: problem.into(),
    }
}

/// Where the data lives, as `DATABASE_URL` says.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseLocation {
    // The Postgres URL may carry a password: show only the backend and, for SQLite, the path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseLocation::Postgres(_) => f.write_str("Postgres(..)"),
            DatabaseLocation::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
        }
    }
}

impl DatabaseLocation {
    fn parse(value: &str) -> Result<Self, SettingError> {
        let value = value.trim();
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(value.to_owned()));
        }
        let path = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
            .unwrap_or(value);
        if path.is_empty() {
            return Err(problem("DATABASE_URL", "empty path"));
        }
        if value.contains("://") && !value.starts_with("sqlite://") {
            return Err(problem(
                "DATABASE_URL",
                "expected postgres://…, sqlite://path or a plain file path",
            ));
        }
        Ok(DatabaseLocation::Sqlite(PathBuf::from(path)))
    }
}

/// Every setting the running services read.
#[derive(Clone)]
pub struct Settings {
    pub api_keys: Vec<String>,
    pub allowed_tokens: Vec<String>,
    pub auth_token: Option<String>,
    pub base_url: String,
    pub max_failures: u32,
    pub max_retries: u32,
    pub time_out: Duration,
    pub test_model: String,
    /// `None` when `CHECK_INTERVAL_HOURS` is 0.
    pub check_interval: Option<Duration>,
    pub proxies: Vec<String>,
    /// Headers added to every upstream request (`CUSTOM_HEADERS`, a JSON object).
    pub custom_headers: std::collections::BTreeMap<String, String>,
    pub filtered_models: Vec<String>,
    /// The model of the simple chat endpoint when the caller names none.
    pub chat_model: String,
    /// Models that get a `-search` variant (Google Search grounding).
    pub search_models: Vec<String>,
    /// Models that get an `-image` variant (text and image output).
    pub image_models: Vec<String>,
    /// Models that get a `-non-thinking` variant (thinking budget 0).
    pub thinking_models: Vec<String>,
    /// Default thinking budget per model, applied when the client sets no thinking config.
    pub thinking_budget_map: std::collections::BTreeMap<String, i64>,
    /// Whether thoughts are returned when a budget of `THINKING_BUDGET_MAP` applies.
    pub show_thinking_process: bool,
    /// Safety settings applied when a request carries none (`[]`: none applied).
    pub safety_settings: Vec<serde_json::Value>,
    /// Add the code execution tool to plain text requests.
    pub tools_code_execution_enabled: bool,
    /// Add the URL context tool for `URL_CONTEXT_MODELS`.
    pub url_context_enabled: bool,
    pub url_context_models: Vec<String>,
    /// Append Google Search sources to `-search` answers on the OpenAI route.
    pub show_search_link: bool,
    /// OpenAI streams answered by a plain call (`FAKE_STREAM_ENABLED`), with empty chunks every
    /// `FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS` meanwhile.
    pub fake_stream_enabled: bool,
    pub fake_stream_empty_data_interval: Duration,
    pub tts_model: String,
    pub tts_voice_name: String,
    pub tts_speed: String,
    /// A key for Imagen (image generation), used instead of the pool when set.
    pub paid_key: Option<String>,
    pub create_image_model: String,
    /// Whether image URLs in OpenAI requests may point at loopback or private addresses.
    pub fetch_private_urls: bool,
    pub database: DatabaseLocation,
    pub encryption_key: Option<String>,
    pub gateway_addr: SocketAddr,
    pub chat_addr: SocketAddr,
    pub keys_addr: SocketAddr,
    pub chat_url: String,
    pub keys_url: String,
    /// Where `/metrics` is served (each process its own).
    pub metrics_addr: SocketAddr,
    /// How long open requests and streams may take to finish after SIGTERM.
    pub drain_timeout: Duration,
    pub log_level: String,
    pub log_json: bool,
    /// Keep the request body in error logs (`ERROR_LOG_RECORD_REQUEST_BODY`).
    pub error_log_record_request_body: bool,
    /// Error logs older than this are deleted (`AUTO_DELETE_ERROR_LOGS_ENABLED/DAYS`).
    pub error_log_retention: Retention,
    /// Request logs older than this are deleted (`AUTO_DELETE_REQUEST_LOGS_ENABLED/DAYS`).
    pub request_log_retention: Retention,
    pub config_addr: SocketAddr,
    pub logging_addr: SocketAddr,
    pub config_url: String,
    pub logging_url: String,
    /// The raw values these settings were read from (environment over `.env`), by name.
    environment: std::sync::Arc<std::collections::BTreeMap<String, String>>,
}

/// How long logs of one kind are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub enabled: bool,
    pub days: u32,
}

impl Retention {
    /// The age beyond which records go, when deletion is on.
    pub fn max_age(&self) -> Option<Duration> {
        self.enabled
            .then(|| Duration::from_secs(u64::from(self.days) * 86_400))
    }
}

impl std::fmt::Debug for Settings {
    // Secrets are shown only as counts or presence.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("api_keys", &format_args!("{} keys", self.api_keys.len()))
            .field(
                "allowed_tokens",
                &format_args!("{} tokens", self.allowed_tokens.len()),
            )
            .field("auth_token_set", &self.auth_token.is_some())
            .field("base_url", &self.base_url)
            .field("max_failures", &self.max_failures)
            .field("max_retries", &self.max_retries)
            .field("time_out", &self.time_out)
            .field("test_model", &self.test_model)
            .field("check_interval", &self.check_interval)
            .field("proxies", &format_args!("{} proxies", self.proxies.len()))
            .field("filtered_models", &self.filtered_models)
            .field("database", &self.database)
            .field("encryption_key_set", &self.encryption_key.is_some())
            .field("gateway_addr", &self.gateway_addr)
            .field("chat_addr", &self.chat_addr)
            .field("keys_addr", &self.keys_addr)
            .field("config_addr", &self.config_addr)
            .field("logging_addr", &self.logging_addr)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The settings as an operator may see them: addresses and values, secrets only as counts
    /// or presence.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "api_keys": self.api_keys.len(),
            "allowed_tokens": self.allowed_tokens.len(),
            "auth_token_set": self.auth_token.is_some(),
            "base_url": self.base_url,
            "max_failures": self.max_failures,
            "max_retries": self.max_retries,
            "time_out_seconds": self.time_out.as_secs_f64(),
            "test_model": self.test_model,
            "check_interval_hours": self.check_interval.map_or(0.0, |interval| interval.as_secs_f64() / 3600.0),
            "proxies": self.proxies.len(),
            "filtered_models": self.filtered_models,
            "database": format!("{:?}", self.database),
            "encryption_key_set": self.encryption_key.is_some(),
            "gateway_addr": self.gateway_addr.to_string(),
            "chat_addr": self.chat_addr.to_string(),
            "keys_addr": self.keys_addr.to_string(),
            "chat_url": self.chat_url,
            "keys_url": self.keys_url,
            "config_addr": self.config_addr.to_string(),
            "logging_addr": self.logging_addr.to_string(),
            "config_url": self.config_url,
            "logging_url": self.logging_url,
            "metrics_addr": self.metrics_addr.to_string(),
            "drain_timeout_seconds": self.drain_timeout.as_secs_f64(),
            "log_level": self.log_level,
        })
    }
}

/// Reads settings from a lookup function, so that tests need not touch the process environment.
/// Remembers every value it read, so that the settings can be rebuilt with overrides.
struct Source<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    seen: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
}

impl Source<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        let value = (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())?;
        self.seen
            .borrow_mut()
            .insert(name.to_owned(), value.clone());
        Some(value)
    }

    fn string(&self, name: &'static str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    fn optional(&self, name: &'static str) -> Option<String> {
        self.raw(name)
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|error| {
                problem(name, format!("{value:?} is not a valid number: {error}"))
            }),
        }
    }

    fn list(&self, name: &'static str, default: &[&str]) -> Result<Vec<String>, SettingError> {
        match self.raw(name) {
            None => Ok(default.iter().map(|item| (*item).to_owned()).collect()),
            Some(value) => parse_list(&value).map_err(|why| problem(name, why)),
        }
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, SettingError> {
        match self.raw(name).map(|value| value.to_ascii_lowercase()) {
            None => Ok(default),
            Some(value) if matches!(value.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(value) if matches!(value.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(value) => Err(problem(name, format!("{value:?}: expected true or false"))),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, SettingError> {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => serde_json::from_str(&value).map_err(|error| {
                problem(
                    name,
                    format!("not valid JSON of the expected shape: {error}"),
                )
            }),
        }
    }

    fn address(&self, name: &'static str, default: &str) -> Result<SocketAddr, SettingError> {
        let value = self.string(name, default);
        value
            .parse()
            .map_err(|_| problem(name, format!("{value:?} is not a host:port socket address")))
    }
}

/// A `.env` file as gemini-balance's users write it (python-dotenv's rules): `KEY=value` lines,
/// `#` comments, optional `export `, values in double quotes (with `\n`, `\"` escapes) or single
/// quotes (literal), and unquoted values kept verbatim, so that `API_KEYS=["a","b"]` and JSON
/// objects survive (a general-purpose dotenv parser strips their inner quotes).
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value[1..value.len() - 1]
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
        } else if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
            value[1..value.len() - 1].to_owned()
        } else {
            // An unquoted value ends at a comment that follows a space.
            value
                .split(" #")
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_owned()
        };
        values.insert(name.trim().to_owned(), value);
    }
    values
}

/// A list in gemini-balance's JSON form or comma-separated; blanks and duplicates dropped, order kept.
pub fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let value = value.trim();
    let items: Vec<String> = if value.starts_with('[') {
        serde_json::from_str::<Vec<String>>(value)
            .map_err(|error| format!("not a JSON list of strings: {error}"))?
    } else {
        value.split(',').map(str::to_owned).collect()
    };
    let mut seen = std::collections::HashSet::new();
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty() && seen.insert(item.clone()))
        .collect())
}

fn custom_headers(
    source: &Source<'_>,
) -> Result<std::collections::BTreeMap<String, String>, SettingError> {
    let headers: std::collections::BTreeMap<String, String> =
        source.json("CUSTOM_HEADERS", Default::default())?;
    for (name, value) in &headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(problem(
                "CUSTOM_HEADERS",
                format!("{name:?} is not a valid header"),
            ));
        }
    }
    Ok(headers)
}

/// `AUTO_DELETE_<what>_ENABLED` and `AUTO_DELETE_<what>_DAYS`.
fn retention(
    source: &Source<'_>,
    enabled: &'static str,
    days: &'static str,
    default_enabled: bool,
    default_days: u32,
) -> Result<Retention, SettingError> {
    let count: u32 = source.number(days, default_days)?;
    if count == 0 {
        return Err(problem(days, "must be at least 1 day"));
    }
    Ok(Retention {
        enabled: source.boolean(enabled, default_enabled)?,
        days: count,
    })
}

fn fake_stream_interval(source: &Source<'_>) -> Result<Duration, SettingError> {
    let seconds: f64 = source.number("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", 5.0)?;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(problem(
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS",
            "must be a positive number of seconds",
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `SAFETY_SETTINGS`: a JSON list of `{"category", "threshold"}` objects.
fn safety_settings(source: &Source<'_>) -> Result<Vec<serde_json::Value>, SettingError> {
    let settings: Vec<serde_json::Value> = source.json("SAFETY_SETTINGS", Vec::new())?;
    for setting in &settings {
        if !(setting["category"].is_string() && setting["threshold"].is_string()) {
            return Err(problem(
                "SAFETY_SETTINGS",
                "each entry needs a \"category\" and a \"threshold\" string",
            ));
        }
    }
    Ok(settings)
}

impl Settings {
    /// Loads `.env` (when present) beneath the process environment, then parses.
    pub fn from_environment() -> Result<Self, SettingError> {
        let file_values = std::fs::read_to_string(".env")
            .map(|text| parse_dotenv(&text))
            .unwrap_or_default();
        Self::from_lookup(&|name| {
            std::env::var(name)
                .ok()
                .or_else(|| file_values.get(name).cloned())
        })
    }

    /// Parses settings from any source of values (the environment, a map in tests).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let source = Source {
            lookup,
            seen: Default::default(),
        };
        let mut settings = Self::parse(&source)?;
        settings.environment = std::sync::Arc::new(source.seen.take());
        Ok(settings)
    }

    /// The raw value the environment (or `.env`) gave a setting, if any.
    pub fn environment_value(&self, name: &str) -> Option<&str> {
        self.environment.get(name).map(String::as_str)
    }

    /// These settings with some values replaced (by name, in the environment's text form).
    /// The result remembers the same environment, so overrides never pile up.
    pub fn with_overrides(
        &self,
        overrides: &std::collections::HashMap<String, String>,
    ) -> Result<Self, SettingError> {
        let environment = self.environment.clone();
        let mut settings = Self::from_lookup(&|name| {
            overrides
                .get(name)
                .or_else(|| environment.get(name))
                .cloned()
        })?;
        settings.environment = environment;
        Ok(settings)
    }

    fn parse(source: &Source<'_>) -> Result<Self, SettingError> {
        let base_url = source.string("BASE_URL", DEFAULT_BASE_URL);
        let parsed_base = url::Url::parse(&base_url)
            .map_err(|error| problem("BASE_URL", format!("{base_url:?} is not a URL: {error}")))?;
        if !matches!(parsed_base.scheme(), "http" | "https") {
            return Err(problem("BASE_URL", "must be an http or https URL"));
        }
        let max_failures: u32 = source.number("MAX_FAILURES", 3)?;
        if max_failures == 0 {
            return Err(problem("MAX_FAILURES", "must be at least 1"));
        }
        let max_retries: u32 = source.number("MAX_RETRIES", 3)?;
        if max_retries == 0 {
            return Err(problem(
                "MAX_RETRIES",
                "must be at least 1 (it counts attempts)",
            ));
        }
        let time_out_seconds: f64 = source.number("TIME_OUT", 300.0)?;
        if !(time_out_seconds.is_finite() && time_out_seconds > 0.0) {
            return Err(problem("TIME_OUT", "must be a positive number of seconds"));
        }
        let check_hours: f64 = source.number("CHECK_INTERVAL_HOURS", 1.0)?;
        if !(check_hours.is_finite() && check_hours >= 0.0) {
            return Err(problem(
                "CHECK_INTERVAL_HOURS",
                "must be 0 (off) or a positive number",
            ));
        }
        let proxies = source.list("PROXIES", &[])?;
        for proxy in &proxies {
            let scheme = proxy.split("://").next().unwrap_or_default();
            if !matches!(scheme, "http" | "https" | "socks5" | "socks5h") || !proxy.contains("://")
            {
                return Err(problem(
                    "PROXIES",
                    "each proxy must be an http://, https:// or socks5:// URL",
                ));
            }
        }
        let database = match source.optional("DATABASE_URL") {
            Some(value) => DatabaseLocation::parse(&value)?,
            None => DatabaseLocation::Sqlite(PathBuf::from("data/gemini-balance.db")),
        };
        let log_format = source.string("LOG_FORMAT", "text");
        let log_json = match log_format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err(problem(
                    "LOG_FORMAT",
                    format!("{other:?}: expected text or json"),
                ));
            }
        };
        let drain_timeout_seconds: f64 = source.number("DRAIN_TIMEOUT", 30.0)?;
        if !(drain_timeout_seconds.is_finite() && drain_timeout_seconds >= 0.0) {
            return Err(problem(
                "DRAIN_TIMEOUT",
                "must be 0 or a positive number of seconds",
            ));
        }
        let chat_addr = source.address("CHAT_ADDR", "0.0.0.0:50051")?;
        let keys_addr = source.address("KEYS_ADDR", "0.0.0.0:50052")?;
        let config_addr = source.address("CONFIG_ADDR", "0.0.0.0:50053")?;
        let logging_addr = source.address("LOGGING_ADDR", "0.0.0.0:50054")?;
        let auth_token = source.optional("AUTH_TOKEN");
        if let Some(token) = &auth_token
            && crate::grpc::InternalToken::new(token).is_err()
        {
            return Err(problem(
                "AUTH_TOKEN",
                "must be printable text (it travels in an HTTP header)",
            ));
        }
        let log_level = source.string("LOG_LEVEL", "info");
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(problem(
                "LOG_LEVEL",
                format!(
                    "{log_level:?}: expected a level (debug, info, warn…) or a filter: {error}"
                ),
            ));
        }
        Ok(Settings {
            api_keys: source.list("API_KEYS", &[])?,
            allowed_tokens: source.list("ALLOWED_TOKENS", &[])?,
            auth_token,
            base_url: base_url.trim_end_matches('/').to_owned(),
            max_failures,
            max_retries,
            time_out: Duration::from_secs_f64(time_out_seconds),
            test_model: source.string("TEST_MODEL", "gemini-2.5-flash-lite"),
            check_interval: (check_hours > 0.0)
                .then(|| Duration::from_secs_f64(check_hours * 3600.0)),
            proxies,
            custom_headers: custom_headers(source)?,
            filtered_models: source.list("FILTERED_MODELS", DEFAULT_FILTERED_MODELS)?,
            chat_model: source.string("CHAT_MODEL", "gemini-2.5-flash"),
            search_models: source.list("SEARCH_MODELS", &["gemini-2.5-flash", "gemini-2.5-pro"])?,
            image_models: source.list(
                "IMAGE_MODELS",
                &["gemini-2.0-flash-exp", "gemini-2.5-flash-image-preview"],
            )?,
            thinking_models: source.list("THINKING_MODELS", &[])?,
            thinking_budget_map: source.json("THINKING_BUDGET_MAP", Default::default())?,
            show_thinking_process: source.boolean("SHOW_THINKING_PROCESS", true)?,
            safety_settings: safety_settings(source)?,
            tools_code_execution_enabled: source.boolean("TOOLS_CODE_EXECUTION_ENABLED", false)?,
            url_context_enabled: source.boolean("URL_CONTEXT_ENABLED", false)?,
            url_context_models: source.list(
                "URL_CONTEXT_MODELS",
                &[
                    "gemini-2.5-pro",
                    "gemini-2.5-flash",
                    "gemini-2.5-flash-lite",
                    "gemini-2.0-flash",
                    "gemini-2.0-flash-live-001",
                ],
            )?,
            show_search_link: source.boolean("SHOW_SEARCH_LINK", true)?,
            fake_stream_enabled: source.boolean("FAKE_STREAM_ENABLED", false)?,
            fake_stream_empty_data_interval: fake_stream_interval(source)?,
            tts_model: source.string("TTS_MODEL", "gemini-2.5-flash-preview-tts"),
            tts_voice_name: source.string("TTS_VOICE_NAME", "Zephyr"),
            tts_speed: source.string("TTS_SPEED", "normal"),
            paid_key: source.optional("PAID_KEY"),
            create_image_model: source.string("CREATE_IMAGE_MODEL", "imagen-3.0-generate-002"),
            fetch_private_urls: source.boolean("FETCH_PRIVATE_URLS", false)?,
            database,
            encryption_key: source.optional("ENCRYPTION_KEY"),
            gateway_addr: source.address("GATEWAY_ADDR", "0.0.0.0:8000")?,
            chat_addr,
            keys_addr,
            chat_url: source.string(
                "CHAT_URL",
                &format!("http://127.0.0.1:{}", chat_addr.port()),
            ),
            keys_url: source.string(
                "KEYS_URL",
                &format!("http://127.0.0.1:{}", keys_addr.port()),
            ),
            metrics_addr: source.address("METRICS_ADDR", "0.0.0.0:9464")?,
            drain_timeout: Duration::from_secs_f64(drain_timeout_seconds),
            log_level,
            log_json,
            error_log_record_request_body: source
                .boolean("ERROR_LOG_RECORD_REQUEST_BODY", false)?,
            error_log_retention: retention(
                source,
                "AUTO_DELETE_ERROR_LOGS_ENABLED",
                "AUTO_DELETE_ERROR_LOGS_DAYS",
                true,
                7,
            )?,
            request_log_retention: retention(
                source,
                "AUTO_DELETE_REQUEST_LOGS_ENABLED",
                "AUTO_DELETE_REQUEST_LOGS_DAYS",
                false,
                30,
            )?,
            config_addr,
            logging_addr,
            config_url: source.string(
                "CONFIG_URL",
                &format!("http://127.0.0.1:{}", config_addr.port()),
            ),
            logging_url: source.string(
                "LOGGING_URL",
                &format!("http://127.0.0.1:{}", logging_addr.port()),
            ),
            environment: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Settings::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn dotenv_keeps_json_values() {
        let values = parse_dotenv(
            "# keys\nAPI_KEYS=[\"AIzaSyA\",\"AIzaSyB\"]\nexport AUTH_TOKEN=\"admin\"\nSAFETY_SETTINGS=[{\"category\":\"X\",\"threshold\":\"OFF\"}]\nLOG_LEVEL=info # comment\nQUOTED='a # b'\n",
        );
        assert_eq!(values["API_KEYS"], "[\"AIzaSyA\",\"AIzaSyB\"]");
        assert_eq!(values["AUTH_TOKEN"], "admin");
        assert_eq!(
            values["SAFETY_SETTINGS"],
            "[{\"category\":\"X\",\"threshold\":\"OFF\"}]"
        );
        assert_eq!(values["LOG_LEVEL"], "info");
        assert_eq!(values["QUOTED"], "a # b");
        assert_eq!(
            parse_list(&values["API_KEYS"]),
            Ok(vec!["AIzaSyA".into(), "AIzaSyB".into()])
        );
    }

    #[test]
    fn lists_accept_json_and_commas() {
        assert_eq!(
            parse_list(r#"["a", "b","a"]"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_list(" a, b ,,c"),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
        assert!(parse_list(r#"["a", 1]"#).is_err());
    }

    #[test]
    fn defaults_are_gemini_balance_defaults() -> Result<(), SettingError> {
        let settings = settings(&[])?;
        assert_eq!(settings.base_url, DEFAULT_BASE_URL);
        assert_eq!(settings.max_failures, 3);
        assert_eq!(settings.max_retries, 3);
        assert_eq!(settings.time_out, Duration::from_secs(300));
        assert_eq!(settings.check_interval, Some(Duration::from_secs(3600)));
        assert_eq!(settings.gateway_addr.port(), 8000);
        assert_eq!(
            settings.database,
            DatabaseLocation::Sqlite(PathBuf::from("data/gemini-balance.db"))
        );
        Ok(())
    }

    #[test]
    fn a_bad_setting_is_named() {
        for (name, value) in [
            ("MAX_RETRIES", "three"),
            ("MAX_FAILURES", "0"),
            ("TIME_OUT", "-1"),
            ("BASE_URL", "not a url"),
            ("PROXIES", "ftp://x"),
            ("API_KEYS", "[1,2]"),
            ("GATEWAY_ADDR", "8000"),
            ("DATABASE_URL", "mysql://x"),
            ("THINKING_BUDGET_MAP", "{\"a\": \"lots\"}"),
            ("SAFETY_SETTINGS", "[{\"category\": 1}]"),
            ("SHOW_THINKING_PROCESS", "maybe"),
            ("CUSTOM_HEADERS", "{\"bad header\": \"x\"}"),
            ("LOG_LEVEL", "very=loud=please"),
            ("AUTO_DELETE_ERROR_LOGS_DAYS", "0"),
            ("AUTH_TOKEN", "admin\u{7f}token"),
        ] {
            let Err(error) = settings(&[(name, value)]) else {
                panic!("{name}={value} was accepted");
            };
            assert_eq!(error.name, name);
            assert!(error.to_string().starts_with(&format!("setting {name}:")));
        }
    }

    #[test]
    fn database_url_forms() -> Result<(), SettingError> {
        assert_eq!(
            DatabaseLocation::parse("postgres://u@h/db")?,
            DatabaseLocation::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite:///tmp/x.db")?,
            DatabaseLocation::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("data/x.db")?,
            DatabaseLocation::Sqlite("data/x.db".into())
        );
        Ok(())
    }

    #[test]
    fn zero_check_interval_turns_checks_off() -> Result<(), SettingError> {
        assert_eq!(
            settings(&[("CHECK_INTERVAL_HOURS", "0")])?.check_interval,
            None
        );
        Ok(())
    }
}
