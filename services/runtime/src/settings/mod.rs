//! Settings, by gemini-balance's own environment names, read from the environment and from a
//! `.env` file in the working directory (the environment wins over the file).
//!
//! Every setting is declared once, below: its field and type, its name, its default, whether it
//! is secret, and where it may change. From that declaration come the typed sections each
//! service reads (`settings.chat`, `settings.keys`, …), the parser, the config service's
//! registry (`config_registry`), the masked views and the README's table. Reading is two steps:
//! each value is parsed from its text (its form), then [`Settings::validate`] checks what the
//! values may be. A bad value stops the start with a message that names the setting.

mod declare;
mod dotenv;
mod limits;
mod secret;
mod validate;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

pub use declare::{Declaration, Scope, Secrecy};
pub use dotenv::{parse_dotenv, parse_list};
pub use limits::{KeyModelLimits, ModelLimit};
pub use secret::Secret;
pub use values::{
    DatabaseLocation, Headers, Hours, Json, Kind, LogFormat, ModelMap, Seconds, SettingValue,
    TimeZone,
};

use declare::declare_settings;

/// Google's endpoint; `BASE_URL` replaces it (a mock in tests, a relay elsewhere).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {problem}")]
pub struct SettingError {
    pub name: &'static str,
    pub problem: String,
}

pub(crate) fn problem(name: &'static str, problem: impl Into<String>) -> SettingError {
    SettingError {
        name,
        problem: problem.into(),
    }
}

declare_settings! {
    /// What several services read: the admin token, the data, the addresses, logs and drain.
    shared: SharedSettings {
        /// The admin token, for admin routes (and between split services). Unlike
        /// gemini-balance, it never falls back to a client token: unset, admin routes are closed.
        auth_token: Option<Secret<String>> = "AUTH_TOKEN", "", Masked, Fixed;
        /// `postgres://…`, `sqlite://path` or a plain SQLite path.
        database: DatabaseLocation = "DATABASE_URL", "data/gemini-balance.db", UrlPassword, Fixed;
        /// 32 bytes, base64 (`openssl rand -base64 32`); generated beside the SQLite file when
        /// unset, required with Postgres.
        encryption_key: Option<Secret<String>> = "ENCRYPTION_KEY", "", Hidden, Fixed;
        /// A `tracing` filter (`info`, `debug`, `gb_chat=debug,info`).
        log_level: String = "LOG_LEVEL", "info", No, Live;
        /// `text` or `json`.
        log_format: LogFormat = "LOG_FORMAT", "text", No, Process;
        /// HTTP listen address.
        gateway_addr: SocketAddr = "GATEWAY_ADDR", "0.0.0.0:8000", No, Process;
        /// The chat service's gRPC listen address (split mode).
        chat_addr: SocketAddr = "CHAT_ADDR", "0.0.0.0:50051", No, Process;
        /// The keys service's gRPC listen address (split mode).
        keys_addr: SocketAddr = "KEYS_ADDR", "0.0.0.0:50052", No, Process;
        /// The config service's gRPC listen address (split mode).
        config_addr: SocketAddr = "CONFIG_ADDR", "0.0.0.0:50053", No, Process;
        /// The logging service's gRPC listen address (split mode).
        logging_addr: SocketAddr = "LOGGING_ADDR", "0.0.0.0:50054", No, Process;
        /// The files service's gRPC listen address (split mode).
        files_addr: SocketAddr = "FILES_ADDR", "0.0.0.0:50055", No, Process;
        /// Where split services find the chat service (default: loopback, `CHAT_ADDR`'s port).
        chat_url: Option<String> = "CHAT_URL", "", No, Process;
        /// Where split services find the keys service (default: loopback, `KEYS_ADDR`'s port).
        keys_url: Option<String> = "KEYS_URL", "", No, Process;
        /// Where split services find the config service (default: loopback, `CONFIG_ADDR`'s port).
        config_url: Option<String> = "CONFIG_URL", "", No, Process;
        /// Where split services find the logging service (default: loopback, `LOGGING_ADDR`'s
        /// port).
        logging_url: Option<String> = "LOGGING_URL", "", No, Process;
        /// Where split services find the files service (default: loopback, `FILES_ADDR`'s port).
        files_url: Option<String> = "FILES_URL", "", No, Process;
        /// Where `/metrics` is served (each process its own).
        metrics_addr: SocketAddr = "METRICS_ADDR", "0.0.0.0:9464", No, Process;
        /// Seconds open requests and streams get to finish after SIGTERM.
        drain_timeout: Seconds = "DRAIN_TIMEOUT", "30", No, Process;
    }

    /// What the keys service reads: the pool's keys and the rules that move their state.
    keys: KeysSettings {
        /// Gemini keys imported into the pool at start (already stored ones are skipped). While
        /// running, a change through the API adds the keys that appear and removes those that
        /// disappear; at a start, keys are only added: remove one with `DELETE /keys/{id}`.
        api_keys: Secret<Vec<String>> = "API_KEYS", "[]", Masked, Live;
        /// Transient failures in a row that disable a key.
        max_failures: u32 = "MAX_FAILURES", "3", No, Live;
        /// The model of key checks.
        test_model: String = "TEST_MODEL", "gemini-2.5-flash-lite", No, Live;
        /// Re-check period for failed keys, in hours (fractions allowed); `0` turns it off.
        check_interval: Hours = "CHECK_INTERVAL_HOURS", "1", No, Live;
    }

    /// How the chat and keys services reach the Gemini API.
    upstream: UpstreamSettings {
        /// The upstream.
        base_url: String = "BASE_URL", "https://generativelanguage.googleapis.com/v1beta", No, Live;
        /// Upstream timeout in seconds (whole call; per read for streams).
        time_out: Seconds = "TIME_OUT", "300", No, Live;
        /// `http://`, `https://` or `socks5://` proxies, one per key (stable mapping).
        proxies: Secret<Vec<String>> = "PROXIES", "[]", UrlPassword, Live;
        /// A JSON object of headers added to every upstream request.
        custom_headers: Secret<Headers> = "CUSTOM_HEADERS", "{}", Masked, Live;
    }

    /// What the chat service reads: retries and the model rules.
    chat: ChatSettings {
        /// Attempts per request (each on another key).
        max_retries: u32 = "MAX_RETRIES", "3", No, Live;
        /// Models hidden from listings and refused (404) without an upstream call.
        filtered_models: Vec<String> = "FILTERED_MODELS", r#"["gemini-1.0-pro-vision-latest","gemini-pro-vision","chat-bison-001","text-bison-001","embedding-gecko-001"]"#, No, Live;
        /// The model of the simple chat endpoints and the `Chat` RPC when none is given.
        chat_model: String = "CHAT_MODEL", "gemini-2.5-flash", No, Live;
        /// Models with a `-search` variant (Google Search grounding).
        search_models: Vec<String> = "SEARCH_MODELS", r#"["gemini-2.5-flash","gemini-2.5-pro"]"#, No, Live;
        /// Models with an `-image` variant (text and image output).
        image_models: Vec<String> = "IMAGE_MODELS", r#"["gemini-2.0-flash-exp","gemini-2.5-flash-image-preview"]"#, No, Live;
        /// Models with a `-non-thinking` variant (thinking budget 0; 128 for 2.5 Pro).
        thinking_models: Vec<String> = "THINKING_MODELS", "[]", No, Live;
        /// `{"model": budget}`: the thinking budget when the client sets no thinking config.
        thinking_budget_map: Json<BTreeMap<String, i64>> = "THINKING_BUDGET_MAP", "{}", No, Live;
        /// With a budget from the map, ask for thoughts (`reasoning_content` on the OpenAI route).
        show_thinking_process: bool = "SHOW_THINKING_PROCESS", "true", No, Live;
        /// `[{"category","threshold"}]` applied when a request carries none (`[]`: Google's own).
        safety_settings: Json<Vec<serde_json::Value>> = "SAFETY_SETTINGS", "[]", No, Live;
        /// Add the code execution tool to plain text requests.
        tools_code_execution_enabled: bool = "TOOLS_CODE_EXECUTION_ENABLED", "false", No, Live;
        /// Add the URL context tool for `URL_CONTEXT_MODELS`.
        url_context_enabled: bool = "URL_CONTEXT_ENABLED", "false", No, Live;
        /// The models that get the URL context tool.
        url_context_models: Vec<String> = "URL_CONTEXT_MODELS", r#"["gemini-2.5-pro","gemini-2.5-flash","gemini-2.5-flash-lite","gemini-2.0-flash","gemini-2.0-flash-live-001"]"#, No, Live;
        /// A key for Imagen (`images/generations`), used instead of the pool when set.
        paid_key: Option<Secret<String>> = "PAID_KEY", "", Masked, Live;
        /// Keep the request body (as sent upstream, up to 256 KiB) in error logs.
        error_log_record_request_body: bool = "ERROR_LOG_RECORD_REQUEST_BODY", "false", No, Live;
        /// Where Google's daily quotas reset at midnight: a key that spent a model's daily
        /// quota (a 429 whose `QuotaFailure` names a per-day quota) rests for that model until then.
        quota_reset_timezone: TimeZone = "QUOTA_RESET_TIMEZONE", "America/Los_Angeles", No, Live;
        /// What Google allows one key per model: `{"glob": {"rpm", "tpm", "rpd"}}`, a glob
        /// prefixed `type:` for keys of that `key_type` only (it wins over the others), the
        /// longest match wins, 0 never serves. A key at a limit is skipped for that model; with
        /// every key at it, the client gets 429 with `Retry-After` without an upstream call.
        key_model_limits: KeyModelLimits = "KEY_MODEL_LIMITS", "{}", No, Live;
    }

    /// What the gateway reads: client tokens and its own translations.
    gateway: GatewaySettings {
        /// Client tokens, given as `x-goog-api-key`, `?key=` or `Authorization: Bearer`.
        allowed_tokens: Secret<Vec<String>> = "ALLOWED_TOKENS", "[]", Masked, Live;
        /// Append the Google Search sources to `-search` answers on the OpenAI route.
        show_search_link: bool = "SHOW_SEARCH_LINK", "true", No, Live;
        /// Answer OpenAI streams from a plain upstream call, with empty chunks meanwhile.
        fake_stream_enabled: bool = "FAKE_STREAM_ENABLED", "false", No, Live;
        /// Seconds between the empty chunks of a fake stream.
        fake_stream_empty_data_interval: Seconds = "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", "5", No, Live;
        /// Anthropic clients' model names (globs, matched without case; the longest match
        /// wins) → the Gemini model that serves them; a name matching none is sent as it is.
        anthropic_model_map: ModelMap = "ANTHROPIC_MODEL_MAP", r#"{"*opus*":"gemini-2.5-pro","*sonnet*":"gemini-2.5-pro","*haiku*":"gemini-2.5-flash"}"#, No, Live;
        /// OpenAI embedding model names (globs, as `ANTHROPIC_MODEL_MAP`) → the Gemini
        /// embedding model that serves them on `embeddings`; a name matching none is sent as it is.
        embedding_model_map: ModelMap = "EMBEDDING_MODEL_MAP", r#"{"text-embedding-*":"gemini-embedding-001"}"#, No, Live;
        /// The model of `audio/speech`.
        tts_model: String = "TTS_MODEL", "gemini-2.5-flash-preview-tts", No, Live;
        /// The voice when the requested one is not a Gemini voice.
        tts_voice_name: String = "TTS_VOICE_NAME", "Zephyr", No, Live;
        /// The default speed of `audio/speech`.
        tts_speed: String = "TTS_SPEED", "normal", No, Live;
        /// The Imagen model.
        create_image_model: String = "CREATE_IMAGE_MODEL", "imagen-3.0-generate-002", No, Live;
        /// Let `image_url`s point at loopback or private addresses (off: no server-side request
        /// forgery through the gateway).
        fetch_private_urls: bool = "FETCH_PRIVATE_URLS", "false", No, Live;
        /// Seconds a client has to send a request's headers, and that an idle kept-alive
        /// connection stays open (slow or silent clients are cut off).
        header_read_timeout: Seconds = "HEADER_READ_TIMEOUT", "10", No, Process;
        /// Seconds a client has to send a whole request body.
        body_read_timeout: Seconds = "BODY_READ_TIMEOUT", "60", No, Process;
        /// Seconds a web console session lasts after its login (a new login starts a new one).
        admin_session_expire: Seconds = "ADMIN_SESSION_EXPIRE", "3600", No, Live;
        /// Open client connections at most; past it new ones are refused at once (default:
        /// from the open-file limit, which is raised to its hard limit at start).
        max_connections: Option<u32> = "MAX_CONNECTIONS", "", No, Process;
    }

    /// What the files service reads: where the content is kept, how large a file may be.
    files: FilesSettings {
        /// Where the content is kept: a directory (default: `files` beside the SQLite file, or
        /// `data/files`), or `s3://bucket/prefix` (credentials, region and `AWS_ENDPOINT_URL`
        /// from the standard `AWS_*` variables) for replicas that share it.
        files_store: Option<String> = "FILES_STORE", "", No, Fixed;
        /// The largest file, in MB (Google's own limit per file is 2 GB); over it: 413, nothing kept.
        files_max_size_mb: u32 = "FILES_MAX_SIZE_MB", "2048", No, Live;
        /// Forget (and delete at Google) upstream copies past their expiry, and drop upload
        /// sessions left unfinished for a day, every `FILES_CLEANUP_INTERVAL_HOURS`.
        files_cleanup_enabled: bool = "FILES_CLEANUP_ENABLED", "true", No, Live;
        /// Hours between cleanups.
        files_cleanup_interval: Hours = "FILES_CLEANUP_INTERVAL_HOURS", "1", No, Live;
        /// Each client sees and uses only the files it uploaded (the admin token sees all); off:
        /// every client sees every file.
        files_user_isolation_enabled: bool = "FILES_USER_ISOLATION_ENABLED", "true", No, Live;
    }

    /// What the logging service reads: how long logs are kept.
    logging: LoggingSettings {
        /// Delete error logs older than `AUTO_DELETE_ERROR_LOGS_DAYS` (every hour, and at once
        /// when these change).
        auto_delete_error_logs_enabled: bool = "AUTO_DELETE_ERROR_LOGS_ENABLED", "true", No, Live;
        /// Days error logs are kept.
        auto_delete_error_logs_days: u32 = "AUTO_DELETE_ERROR_LOGS_DAYS", "7", No, Live;
        /// Delete request logs older than `AUTO_DELETE_REQUEST_LOGS_DAYS`.
        auto_delete_request_logs_enabled: bool = "AUTO_DELETE_REQUEST_LOGS_ENABLED", "false", No, Live;
        /// Days request logs are kept.
        auto_delete_request_logs_days: u32 = "AUTO_DELETE_REQUEST_LOGS_DAYS", "30", No, Live;
    }
}

/// The raw values the settings were read from (environment over `.env`), by name. Never
/// printed: they include the secrets.
#[derive(Clone, Default)]
struct Environment(Arc<BTreeMap<String, String>>);

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Environment({} values)", self.0.len())
    }
}

/// Reads values from a lookup function, so that tests need not touch the process environment.
/// Remembers every value it read, so that the settings can be rebuilt with overrides.
struct Source<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    seen: std::cell::RefCell<BTreeMap<String, String>>,
}

impl Source<'_> {
    fn value<T: SettingValue>(&self, name: &'static str, default: &str) -> Result<T, SettingError> {
        let given = (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty());
        if let Some(value) = &given {
            self.seen
                .borrow_mut()
                .insert(name.to_owned(), value.clone());
        }
        T::parse(given.as_deref().unwrap_or(default)).map_err(|why| problem(name, why))
    }
}

/// How long logs of one kind are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub enabled: bool,
    pub days: u32,
}

impl Retention {
    /// The age beyond which records go, when deletion is on.
    pub fn max_age(&self) -> Option<std::time::Duration> {
        self.enabled
            .then(|| std::time::Duration::from_secs(u64::from(self.days) * 86_400))
    }
}

impl LoggingSettings {
    pub fn error_log_retention(&self) -> Retention {
        Retention {
            enabled: self.auto_delete_error_logs_enabled,
            days: self.auto_delete_error_logs_days,
        }
    }

    pub fn request_log_retention(&self) -> Retention {
        Retention {
            enabled: self.auto_delete_request_logs_enabled,
            days: self.auto_delete_request_logs_days,
        }
    }
}

/// A loopback URL to a listen address's port, for a `*_URL` left unset.
fn loopback_url(url: &Option<String>, address: SocketAddr) -> String {
    url.clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", address.port()))
}

impl SharedSettings {
    pub fn chat_url(&self) -> String {
        loopback_url(&self.chat_url, self.chat_addr)
    }

    pub fn keys_url(&self) -> String {
        loopback_url(&self.keys_url, self.keys_addr)
    }

    pub fn config_url(&self) -> String {
        loopback_url(&self.config_url, self.config_addr)
    }

    pub fn logging_url(&self) -> String {
        loopback_url(&self.logging_url, self.logging_addr)
    }

    pub fn files_url(&self) -> String {
        loopback_url(&self.files_url, self.files_addr)
    }
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

    /// Parses and validates settings from any source of values (the environment, a map in
    /// tests).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let source = Source {
            lookup,
            seen: Default::default(),
        };
        let mut settings = Self::parse_sections(&source)?;
        settings.validate()?;
        settings.environment = Environment(Arc::new(source.seen.take()));
        Ok(settings)
    }

    /// The raw value the environment (or `.env`) gave a setting, if any.
    pub fn environment_value(&self, name: &str) -> Option<&str> {
        self.environment.0.get(name).map(String::as_str)
    }

    /// These settings with some values replaced (by name, in the environment's text form).
    /// The result remembers the same environment, so overrides never pile up.
    pub fn with_overrides(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<Self, SettingError> {
        let environment = self.environment.clone();
        let mut settings = Self::from_lookup(&|name| {
            overrides
                .get(name)
                .or_else(|| environment.0.get(name))
                .cloned()
        })?;
        settings.environment = environment;
        Ok(settings)
    }

    /// These settings with every override that applies: one that fails is left out (its
    /// setting keeps the environment's value) and named in the errors returned. For values
    /// stored by an earlier version, or checked against another process's environment.
    pub fn with_applicable_overrides(
        &self,
        overrides: &HashMap<String, String>,
    ) -> (Self, Vec<SettingError>) {
        let mut applicable = overrides.clone();
        let mut refused = Vec::new();
        loop {
            match self.with_overrides(&applicable) {
                Ok(settings) => return (settings, refused),
                Err(error) => {
                    let left_out = applicable.remove(error.name).is_some();
                    refused.push(error);
                    if !left_out {
                        // Not an override's fault: these settings, as they are, stay.
                        return (self.clone(), refused);
                    }
                }
            }
        }
    }

    /// Every setting by name, as an operator may see it: secrets masked.
    pub fn masked_view(&self) -> serde_json::Value {
        let mut view = serde_json::Map::new();
        for declaration in DECLARATIONS {
            let value =
                crate::config_registry::masked(declaration, &self.config_value(declaration.name));
            view.insert(declaration.name.to_owned(), value);
        }
        serde_json::Value::Object(view)
    }
}

/// The README's table of settings, made from the declarations.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| setting | default | changes while running | meaning |\n|---|---|---|---|\n",
    );
    for declaration in DECLARATIONS {
        let default = match declaration.default {
            "" => "none".to_owned(),
            text => format!("`{}`", text.replace('|', "\\|")),
        };
        let scope = match declaration.scope {
            Scope::Live => "yes",
            Scope::Fixed => "no (listed)",
            Scope::Process => "no",
        };
        table.push_str(&format!(
            "| `{}` | {default} | {scope} | {} |\n",
            declaration.name,
            declaration
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|"),
        ));
    }
    table
}

/// The declaration of a setting.
pub fn find(name: &str) -> Option<&'static Declaration> {
    DECLARATIONS
        .iter()
        .find(|declaration| declaration.name == name)
}

#[cfg(test)]
mod tests;
