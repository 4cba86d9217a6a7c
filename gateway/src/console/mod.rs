//! The operator's web console: server-rendered pages (askama, escaped by default) under
//! `/console/`, the login page at `/`, the assets embedded in the binary. The pages read the
//! services over the same gRPC clients as the admin API; their scripts call the admin API
//! itself, which accepts a console session in place of the admin token, with the session's
//! CSRF token on every POST, PUT and DELETE (`guards.rs::admin_only`).

mod assets;
mod config;
mod files;
pub mod i18n;
mod keys;
mod login;
mod logs;
pub mod session;
mod setting_help;
mod stats;

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::GatewayState;
pub use session::ClientAddr;
use session::{Session, Sessions};

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/", get(login::page))
        .route("/login", post(login::log_in))
        .route("/console", get(|| async { Redirect::to("/console/keys") }))
        .route("/console/", get(|| async { Redirect::to("/console/keys") }))
        .route("/console/logout", post(login::log_out))
        .route("/console/keys", get(keys::page))
        .route("/console/keys/add", post(keys::add))
        .route("/console/config", get(config::page))
        .route("/console/logs", get(logs::page))
        .route("/console/stats", get(stats::page))
        .route("/console/files", get(files::page))
        .route("/console/assets/{*name}", get(assets::serve))
        // gemini-balance's bookmarks.
        .route("/config", get(|| async { Redirect::to("/console/config") }))
        .route("/logs", get(|| async { Redirect::to("/console/logs") }))
        .layer(axum::middleware::from_fn(page_headers))
}

/// The security headers of every console response, and the language chosen with `?lang=`
/// kept in a cookie.
async fn page_headers(request: Request, next: Next) -> Response {
    let chosen = request
        .uri()
        .query()
        .filter(|query| query.contains("lang="))
        .map(|query| i18n::language(&HeaderMap::new(), Some(query)));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(lang) = chosen
        && let Ok(cookie) = HeaderValue::from_str(&format!(
            "gb_lang={lang}; Path=/; Max-Age=31536000; SameSite=Strict"
        ))
    {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// What the console keeps in the gateway: failed logins per client address, and the models
/// list of the settings page's picker (a call to Google through the pool: kept ten minutes).
#[derive(Default)]
pub struct ConsoleState {
    pub login_limiter: session::LoginLimiter,
    pub models: std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

/// The sessions of the server's secret and the admin token as they are now.
pub fn sessions<R>(state: &GatewayState, use_them: impl FnOnce(&Sessions<'_>) -> R) -> R {
    let auth = state.auth.get();
    use_them(&Sessions {
        names: &state.names,
        admin_token: auth.admin_token(),
    })
}

/// The session a request's cookie proves, if any.
pub fn session_of(state: &GatewayState, headers: &HeaderMap) -> Option<Session> {
    let cookie = session::cookie(headers, session::SESSION_COOKIE)?;
    sessions(state, |sessions| {
        sessions.check(cookie, gb_runtime::now_ms() / 1_000)
    })
}

/// Whether a presented CSRF token is the session's.
pub fn csrf_matches(state: &GatewayState, session: &Session, presented: &str) -> bool {
    sessions(state, |sessions| {
        sessions.csrf_matches(&session.id, presented)
    })
}

/// What a console session lets a request without the admin token do on the admin API.
pub enum SessionAccess {
    /// No session: the route's own check answers.
    NoSession,
    /// A read, or a change that carries the session's CSRF token (`X-CSRF-Token`).
    Allowed,
    /// A change without the session's CSRF token: 403.
    CsrfRefused,
}

pub const CSRF_REFUSED: &str =
    "the console's CSRF token (X-CSRF-Token) is missing or wrong: reload the page";

pub fn session_access(state: &GatewayState, request: &Request) -> SessionAccess {
    let Some(session) = session_of(state, request.headers()) else {
        return SessionAccess::NoSession;
    };
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let csrf = request
        .headers()
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if reads || csrf_matches(state, &session, csrf) {
        SessionAccess::Allowed
    } else {
        SessionAccess::CsrfRefused
    }
}

/// A browser asking for a page (it accepts HTML and sends no `Authorization`): `/keys` sends
/// it to the console instead of the JSON API.
pub fn is_browser(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION)
        && headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// What every page shows around its content: the language, the navigation, the session's
/// CSRF token.
pub struct Chrome {
    pub t: &'static i18n::Strings,
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub csrf: String,
    pub active: &'static str,
    pub version: &'static str,
    pub i18n_json: String,
}

impl Chrome {
    /// The page's chrome for a logged-in request, or the redirect to the login page.
    pub fn of(
        state: &GatewayState,
        headers: &HeaderMap,
        query: Option<&str>,
        active: &'static str,
    ) -> Result<Chrome, Redirect> {
        let Some(session) = session_of(state, headers) else {
            return Err(Redirect::to("/"));
        };
        let csrf = sessions(state, |sessions| sessions.csrf(&session.id));
        let lang = i18n::language(headers, query);
        let t = i18n::strings(lang);
        Ok(Chrome {
            t,
            lang,
            other_lang: if lang == "en" { "zh-CN" } else { "en" },
            csrf,
            active,
            version: assets::version(),
            i18n_json: i18n::as_json(t),
        })
    }
}

/// A page rendered, or the reason it could not be.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    status: u16,
    message: String,
}

/// A service's refusal, shown as a page with its message.
pub fn failure(chrome: &Chrome, status: &tonic::Status) -> Response {
    let code = gb_proto::chat::http_status(status);
    let mut response = render(&ErrorPage {
        chrome,
        status: code,
        message: status.message().to_owned(),
    });
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}

/// A time in the console's form (UTC), or an empty text for none.
pub fn when(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A length of time in its two largest units: `3m 20s`, `2h 5m`.
pub fn duration_text(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let seconds = (ms + 999) / 1_000;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// A query string for a page's links: the pairs with a value.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            out.append_pair(name, value);
        }
    }
    out.finish()
}
