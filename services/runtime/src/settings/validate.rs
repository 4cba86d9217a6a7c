//! The second step of reading settings: what each parsed value may be. One function, so that
//! the environment at start and every change through the settings API pass the same checks.

use std::time::Duration;

use super::{SettingError, Settings, problem};

const DAY: Duration = Duration::from_secs(86_400);

/// A duration above zero and at most `limit` (a timer set further ahead overflows the clock).
fn within(name: &'static str, value: Duration, limit: Duration) -> Result<(), SettingError> {
    if value.is_zero() || value > limit {
        return Err(problem(
            name,
            format!("must be above 0 and at most {} seconds", limit.as_secs()),
        ));
    }
    Ok(())
}

/// A proxy as the upstream client builds it (`reqwest::Proxy::all` on a client): the same
/// construction, so that a value accepted here can never stop a service that applies it.
/// A value that is not a URL is named by its position, never quoted: it may be a secret
/// pasted in the wrong place.
fn validate_proxy(position: usize, proxy: &str) -> Result<(), SettingError> {
    let shown = crate::config_registry::mask_url_password(proxy);
    let scheme = proxy.split("://").next().unwrap_or_default();
    if !matches!(scheme, "http" | "https" | "socks5" | "socks5h") || !proxy.contains("://") {
        return Err(problem(
            "PROXIES",
            format!(
                "proxy {position} is not an http://, https:// or socks5:// URL (each proxy must be one)"
            ),
        ));
    }
    let parsed = url::Url::parse(proxy).map_err(|error| {
        problem(
            "PROXIES",
            format!("proxy {position} ({scheme}://…) is not a URL: {error}"),
        )
    })?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(problem("PROXIES", format!("{shown:?} names no host")));
    }
    let built = reqwest::Proxy::all(proxy)
        .and_then(|proxy| reqwest::Client::builder().no_proxy().proxy(proxy).build());
    built.map(drop).map_err(|error| {
        problem(
            "PROXIES",
            format!(
                "{shown:?} cannot be used: {}",
                crate::secrets::redact(&error.to_string(), proxy)
            ),
        )
    })
}

impl Settings {
    pub fn validate(&self) -> Result<(), SettingError> {
        self.validate_shared()?;
        let keys = &self.keys;
        if keys.max_failures == 0 {
            return Err(problem("MAX_FAILURES", "must be at least 1"));
        }
        let upstream = &self.upstream;
        let base_url = url::Url::parse(&upstream.base_url).map_err(|error| {
            problem(
                "BASE_URL",
                format!("{:?} is not a URL: {error}", upstream.base_url),
            )
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(problem("BASE_URL", "must be an http or https URL"));
        }
        let chat = &self.chat;
        if chat.max_retries == 0 {
            return Err(problem(
                "MAX_RETRIES",
                "must be at least 1 (it counts attempts)",
            ));
        }
        within("TIME_OUT", upstream.time_out.0, DAY)?;
        // 0: no drain at all.
        if !self.shared.drain_timeout.0.is_zero() {
            within("DRAIN_TIMEOUT", self.shared.drain_timeout.0, DAY)?;
        }
        if let Some(period) = keys.check_interval.0 {
            within("CHECK_INTERVAL_HOURS", period, 366 * DAY)?;
        }
        for (index, proxy) in upstream.proxies.expose().iter().enumerate() {
            validate_proxy(index + 1, proxy)?;
        }
        for (name, value) in &upstream.custom_headers.expose().0 {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(problem(
                    "CUSTOM_HEADERS",
                    format!("{name:?} is not a valid header"),
                ));
            }
        }
        for setting in &chat.safety_settings.0 {
            if !(setting["category"].is_string() && setting["threshold"].is_string()) {
                return Err(problem(
                    "SAFETY_SETTINGS",
                    "each entry needs a \"category\" and a \"threshold\" string",
                ));
            }
        }
        within(
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS",
            self.gateway.fake_stream_empty_data_interval.0,
            Duration::from_secs(3600),
        )?;
        within(
            "HEADER_READ_TIMEOUT",
            self.gateway.header_read_timeout.0,
            DAY,
        )?;
        within("BODY_READ_TIMEOUT", self.gateway.body_read_timeout.0, DAY)?;
        let session = self.gateway.admin_session_expire.0.as_secs();
        if !(5..=86_400).contains(&session) {
            return Err(problem(
                "ADMIN_SESSION_EXPIRE",
                "must be between 5 and 86400 seconds",
            ));
        }
        if self.gateway.max_connections == Some(0) {
            return Err(problem("MAX_CONNECTIONS", "must be at least 1"));
        }
        let files = &self.files;
        if files.files_max_size_mb == 0 {
            return Err(problem("FILES_MAX_SIZE_MB", "must be at least 1"));
        }
        if let Some(period) = files.files_cleanup_interval.0 {
            within("FILES_CLEANUP_INTERVAL_HOURS", period, 366 * DAY)?;
        }
        if let Some(store) = files.files_store.as_deref()
            && let Some(rest) = store.strip_prefix("s3://")
            && rest.split('/').next().is_none_or(str::is_empty)
        {
            return Err(problem("FILES_STORE", "s3://bucket/prefix needs a bucket"));
        }
        let logging = &self.logging;
        if logging.auto_delete_error_logs_days == 0 {
            return Err(problem(
                "AUTO_DELETE_ERROR_LOGS_DAYS",
                "must be at least 1 day",
            ));
        }
        if logging.auto_delete_request_logs_days == 0 {
            return Err(problem(
                "AUTO_DELETE_REQUEST_LOGS_DAYS",
                "must be at least 1 day",
            ));
        }
        Ok(())
    }

    fn validate_shared(&self) -> Result<(), SettingError> {
        let shared = &self.shared;
        if let Some(token) = &shared.auth_token
            && crate::grpc::InternalToken::new(token.expose()).is_err()
        {
            return Err(problem(
                "AUTH_TOKEN",
                "must be printable text (it travels in an HTTP header)",
            ));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&shared.log_level) {
            return Err(problem(
                "LOG_LEVEL",
                format!(
                    "{:?}: expected a level (debug, info, warn…) or a filter: {error}",
                    shared.log_level
                ),
            ));
        }
        Ok(())
    }
}
