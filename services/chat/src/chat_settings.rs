//! What the chat service reads from the settings, rebuilt whenever they change (`BASE_URL`,
//! `TIME_OUT`, `PROXIES`, `CUSTOM_HEADERS`, `MAX_RETRIES`, the model lists and rules,
//! `PAID_KEY`, `ERROR_LOG_RECORD_REQUEST_BODY`, `QUOTA_RESET_TIMEZONE`). A request reads one consistent version.

use std::sync::Arc;

use gb_runtime::settings::Settings;
use gb_upstream::Upstream;

use crate::models::ModelRules;

pub struct ChatSettings {
    pub upstream: Upstream,
    /// `PROXIES` as configured (the proxy checks; the requests go through `upstream`).
    pub proxies: Vec<String>,
    /// `server.address` of the upstream spans.
    pub upstream_host: Arc<str>,
    pub max_retries: u32,
    /// `MAX_FAILURES` (the keys service's rule, applied here too until its verdict arrives).
    pub max_failures: u32,
    pub rules: ModelRules,
    pub chat_model: String,
    pub paid_key: Option<String>,
    pub record_request_body: bool,
    /// `QUOTA_RESET_TIMEZONE`: where Google's daily quotas reset at midnight.
    pub quota_reset: gb_runtime::settings::TimeZone,
}

impl ChatSettings {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let upstream = Upstream::from_settings(&settings.upstream)?;
        let chat = &settings.chat;
        Ok(ChatSettings {
            upstream_host: upstream.host().into(),
            proxies: settings.upstream.proxies.expose().clone(),
            upstream,
            max_retries: chat.max_retries,
            max_failures: settings.keys.max_failures,
            rules: ModelRules::from_settings(chat),
            chat_model: chat.chat_model.clone(),
            paid_key: chat.paid_key.as_ref().map(|key| key.expose().clone()),
            record_request_body: chat.error_log_record_request_body,
            quota_reset: chat.quota_reset_timezone,
        })
    }
}
