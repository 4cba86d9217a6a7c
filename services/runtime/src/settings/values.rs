//! The kinds of value a setting can hold, each parsed from the environment's text form (the
//! same text the config service stores) and shown as JSON by the settings API. Parsing checks
//! the form only (a number, a list, an address); what a value may be is `validate`'s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::dotenv::parse_list;
use super::secret::Secret;

/// The value kinds the settings API names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    /// A list of strings (`["a","b"]` or `a,b`).
    List,
    /// A JSON object or array (`SAFETY_SETTINGS`, `THINKING_BUDGET_MAP`, `CUSTOM_HEADERS`).
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

/// A type a setting can have.
pub trait SettingValue: Sized {
    const KIND: Kind;
    /// Parses the text form; the empty text is what an unset setting without a default gives.
    fn parse(text: &str) -> Result<Self, String>;
    /// The value as the settings API shows it (before masking).
    fn to_json(&self) -> Value;
}

impl SettingValue for String {
    const KIND: Kind = Kind::String;
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn to_json(&self) -> Value {
        json!(self)
    }
}

impl SettingValue for u32 {
    const KIND: Kind = Kind::Integer;
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|error| format!("{text:?} is not a valid number: {error}"))
    }
    fn to_json(&self) -> Value {
        json!(self)
    }
}

impl SettingValue for bool {
    const KIND: Kind = Kind::Boolean;
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(format!("{other:?}: expected true or false")),
        }
    }
    fn to_json(&self) -> Value {
        json!(self)
    }
}

impl SettingValue for Vec<String> {
    const KIND: Kind = Kind::List;
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        parse_list(text)
    }
    fn to_json(&self) -> Value {
        json!(self)
    }
}

/// A duration given in seconds (fractions allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub Duration);

/// A number of seconds or hours as a duration: finite, not negative, within `Duration`'s range.
fn duration(text: &str, unit_seconds: f64) -> Result<Duration, String> {
    let number: f64 = text
        .parse()
        .map_err(|error| format!("{text:?} is not a valid number: {error}"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(format!("{text:?}: expected 0 or a positive number"));
    }
    Duration::try_from_secs_f64(number * unit_seconds).map_err(|_| format!("{text:?} is too large"))
}

impl SettingValue for Seconds {
    const KIND: Kind = Kind::Number;
    fn parse(text: &str) -> Result<Self, String> {
        duration(text, 1.0).map(Seconds)
    }
    fn to_json(&self) -> Value {
        json!(self.0.as_secs_f64())
    }
}

/// A period in hours (fractions allowed); 0 turns it off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hours(pub Option<Duration>);

impl SettingValue for Hours {
    const KIND: Kind = Kind::Number;
    fn parse(text: &str) -> Result<Self, String> {
        let period = duration(text, 3600.0)?;
        Ok(Hours((!period.is_zero()).then_some(period)))
    }
    fn to_json(&self) -> Value {
        json!(self.0.map_or(0.0, |period| period.as_secs_f64() / 3600.0))
    }
}

/// Any JSON value of the shape `T` (an object of headers, a map of budgets, a list of
/// safety settings).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Json<T>(pub T);

impl<T> SettingValue for Json<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default,
{
    const KIND: Kind = Kind::Json;
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Json(T::default()));
        }
        serde_json::from_str(text)
            .map(Json)
            .map_err(|error| format!("not valid JSON of the expected shape: {error}"))
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(&self.0).unwrap_or(Value::Null)
    }
}

/// `CUSTOM_HEADERS`: header name to value.
pub type Headers = Json<BTreeMap<String, String>>;

impl SettingValue for SocketAddr {
    const KIND: Kind = Kind::String;
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("{text:?} is not a host:port socket address"))
    }
    fn to_json(&self) -> Value {
        json!(self.to_string())
    }
}

/// An optional value: the empty text is none (shown as `""`).
impl<T: SettingValue> SettingValue for Option<T> {
    const KIND: Kind = T::KIND;
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(None);
        }
        T::parse(text).map(Some)
    }
    fn to_json(&self) -> Value {
        self.as_ref().map_or(json!(""), T::to_json)
    }
}

impl<T: SettingValue> SettingValue for Secret<T> {
    const KIND: Kind = T::KIND;
    /// A refusal never quotes the secret: whatever piece of the value its message repeats (a
    /// JSON parser quotes the string it did not expect) is masked.
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text)
            .map(Secret::new)
            .map_err(|why| crate::secrets::redact_pieces(&why, text))
    }
    fn to_json(&self) -> Value {
        self.expose().to_json()
    }
}

/// An IANA time zone (`America/Los_Angeles`), for the moment daily quotas reset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::Tz::America__Los_Angeles)
    }
}

impl TimeZone {
    /// The first midnight of this zone after `now_ms` (Unix milliseconds): when a quota per day
    /// that was spent at `now_ms` is given back.
    pub fn next_midnight_ms(self, now_ms: i64) -> i64 {
        use chrono::{Days, TimeZone as _};
        let Some(now) = chrono::DateTime::from_timestamp_millis(now_ms) else {
            return now_ms;
        };
        let today = now.with_timezone(&self.0).date_naive();
        let Some(tomorrow) = today.checked_add_days(Days::new(1)) else {
            return now_ms;
        };
        let midnight = tomorrow.and_time(chrono::NaiveTime::MIN);
        // A zone whose clocks skip midnight (a few do, on their change day) starts that day
        // at the first moment that exists.
        let start = self
            .0
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                self.0
                    .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            });
        start.map_or(now_ms + 86_400_000, |start| start.timestamp_millis())
    }
}

impl SettingValue for TimeZone {
    const KIND: Kind = Kind::String;
    fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| format!("{text:?} is not an IANA time zone (say America/Los_Angeles)"))
    }
    fn to_json(&self) -> Value {
        json!(self.0.name())
    }
}

/// A JSON object of model-name glob → model (`ANTHROPIC_MODEL_MAP`): `*` any run of
/// characters, `?` one, `[…]` a class; a name matching no glob is kept as it is. Where several
/// globs match, the longest (the most specific) wins; among equally long ones, the first in
/// name order.
#[derive(Clone, Default)]
pub struct ModelMap {
    entries: BTreeMap<String, String>,
    /// The compiled globs, longest first.
    matchers: Vec<(globset::GlobMatcher, String)>,
}

impl std::fmt::Debug for ModelMap {
    // The globs as written (the compiled matchers are noise in a log line).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ModelMap").field(&self.entries).finish()
    }
}

impl PartialEq for ModelMap {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl ModelMap {
    /// The model a name maps to, or `None` when no glob matches.
    pub fn map(&self, name: &str) -> Option<&str> {
        self.matchers
            .iter()
            .find(|(matcher, _)| matcher.is_match(name))
            .map(|(_, model)| model.as_str())
    }
}

impl SettingValue for ModelMap {
    const KIND: Kind = Kind::Json;
    fn parse(text: &str) -> Result<Self, String> {
        let Json(entries) = Json::<BTreeMap<String, String>>::parse(text)?;
        let mut matchers = Vec::with_capacity(entries.len());
        for (pattern, model) in &entries {
            if model.trim().is_empty() {
                return Err(format!("{pattern:?} maps to an empty model name"));
            }
            let glob = globset::GlobBuilder::new(pattern)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|error| format!("{pattern:?} is not a glob: {error}"))?;
            matchers.push((glob.compile_matcher(), model.clone()));
        }
        // Stable: equally long globs keep their name order.
        matchers.sort_by_key(|(matcher, _)| std::cmp::Reverse(matcher.glob().glob().len()));
        Ok(ModelMap { entries, matchers })
    }
    fn to_json(&self) -> Value {
        json!(self.entries)
    }
}

/// Where the data lives, as `DATABASE_URL` says.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Postgres(Secret<String>),
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

impl SettingValue for DatabaseLocation {
    const KIND: Kind = Kind::String;
    fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(Secret::new(text.to_owned())));
        }
        if text.contains("://") && !text.starts_with("sqlite://") {
            return Err("expected postgres://…, sqlite://path or a plain file path".into());
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        if path.is_empty() {
            return Err("empty path".into());
        }
        Ok(DatabaseLocation::Sqlite(PathBuf::from(path)))
    }
    fn to_json(&self) -> Value {
        match self {
            DatabaseLocation::Postgres(url) => json!(url.expose()),
            DatabaseLocation::Sqlite(path) => json!(format!("sqlite://{}", path.display())),
        }
    }
}

/// `LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl SettingValue for LogFormat {
    const KIND: Kind = Kind::String;
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?}: expected text or json")),
        }
    }
    fn to_json(&self) -> Value {
        json!(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_maps_match_the_most_specific_glob() {
        let map = ModelMap::parse(
            r#"{"*sonnet*": "gemini-2.5-pro", "claude-3-5-sonnet*": "gemini-2.5-flash", "*haiku*": "gemini-2.5-flash-lite"}"#,
        )
        .unwrap_or_default();
        assert_eq!(map.map("claude-sonnet-4-5"), Some("gemini-2.5-pro"));
        assert_eq!(
            map.map("claude-3-5-sonnet-latest"),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            map.map("Claude-3-HAIKU-20240307"),
            Some("gemini-2.5-flash-lite")
        );
        assert_eq!(map.map("gemini-2.5-pro"), None);
        assert_eq!(
            ModelMap::parse("").map(|map| map.map("x").is_none()),
            Ok(true)
        );
        assert!(
            ModelMap::parse(r#"{"[a": "m"}"#).is_err(),
            "an unclosed class"
        );
        assert!(ModelMap::parse(r#"{"*": ""}"#).is_err(), "an empty model");
        assert!(ModelMap::parse(r#"["*"]"#).is_err(), "not an object");
    }

    #[test]
    fn daily_quotas_reset_at_midnight_in_their_zone() {
        let zone = TimeZone::parse("America/Los_Angeles").unwrap();
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_millis()
        };
        // Summer (PDT, UTC-7) and winter (PST, UTC-8).
        assert_eq!(
            zone.next_midnight_ms(at("2026-07-01T10:00:00Z")),
            at("2026-07-02T07:00:00Z")
        );
        assert_eq!(
            zone.next_midnight_ms(at("2026-12-02T07:59:59Z")),
            at("2026-12-02T08:00:00Z")
        );
        assert_eq!(
            zone.next_midnight_ms(at("2026-12-02T08:00:00Z")),
            at("2026-12-03T08:00:00Z")
        );
        // The day the clocks go back (2026-11-01 in the US) is 25 hours long.
        assert_eq!(
            zone.next_midnight_ms(at("2026-11-01T08:00:00Z")),
            at("2026-11-02T08:00:00Z")
        );
        assert_eq!(
            TimeZone::parse("UTC")
                .unwrap()
                .next_midnight_ms(at("2026-12-02T23:00:00Z")),
            at("2026-12-03T00:00:00Z")
        );
        assert!(TimeZone::parse("Pacific Time").is_err());
    }

    #[test]
    fn database_url_forms() {
        assert_eq!(
            DatabaseLocation::parse("postgres://u@h/db"),
            Ok(DatabaseLocation::Postgres(Secret::new(
                "postgres://u@h/db".into()
            )))
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite:///tmp/x.db"),
            Ok(DatabaseLocation::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            DatabaseLocation::parse("data/x.db"),
            Ok(DatabaseLocation::Sqlite("data/x.db".into()))
        );
        assert!(DatabaseLocation::parse("mysql://x").is_err());
    }

    #[test]
    fn durations_are_finite_and_in_range() {
        assert_eq!(
            Seconds::parse("1.5"),
            Ok(Seconds(Duration::from_millis(1500)))
        );
        for bad in ["-1", "NaN", "inf", "1e300", "soon"] {
            assert!(Seconds::parse(bad).is_err(), "{bad}");
            assert!(Hours::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Hours::parse("0"), Ok(Hours(None)));
    }
}
