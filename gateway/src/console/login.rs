//! `/`: the login form for the admin token; `POST /login` starts a session, `POST
//! /console/logout` ends it. The form carries a CSRF token bound to a nonce in a cookie of
//! its own; failed logins are limited per client address.

use askama::Template;
use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{self, ClientAddr, LOGIN_COOKIE, SESSION_COOKIE};
use super::{assets, i18n, render};
use crate::state::GatewayState;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    t: &'static i18n::Strings,
    lang: &'static str,
    other_lang: &'static str,
    version: &'static str,
    csrf: String,
    error: Option<&'static str>,
}

/// The login form with a fresh nonce (its cookie set on the answer) and `status`.
fn form(
    state: &GatewayState,
    headers: &HeaderMap,
    query: Option<&str>,
    status: StatusCode,
    error: Option<fn(&i18n::Strings) -> &'static str>,
) -> Response {
    let lang = i18n::language(headers, query);
    let t = i18n::strings(lang);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let csrf = super::sessions(state, |sessions| sessions.csrf(&format!("login:{nonce}")));
    let error = match (state.auth.get().admin_token(), error) {
        (None, _) => Some(t.login_closed),
        (_, Some(error)) => Some(error(t)),
        _ => None,
    };
    let mut response = render(&LoginPage {
        t,
        lang,
        other_lang: if lang == "en" { "zh-CN" } else { "en" },
        version: assets::version(),
        csrf,
        error,
    });
    *response.status_mut() = status;
    let secure = session::over_https(headers, &axum::http::Uri::from_static("/"));
    if let Ok(cookie) =
        HeaderValue::from_str(&session::set_cookie(LOGIN_COOKIE, &nonce, 3_600, secure))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn page(State(state): State<GatewayState>, request: Request) -> Response {
    if super::session_of(&state, request.headers()).is_some() {
        return Redirect::to("/console/keys").into_response();
    }
    form(
        &state,
        request.headers(),
        request.uri().query(),
        StatusCode::OK,
        None,
    )
}

/// What a login form's post comes to.
enum Verdict {
    /// A session, as its cookie value.
    Started(String),
    /// The form's CSRF token does not match its nonce cookie (or there is none).
    FormExpired,
    WrongToken,
    /// No admin token is set: no session can start.
    Closed,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn log_in(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    peer: Option<axum::Extension<ClientAddr>>,
    Form(login): Form<LoginForm>,
) -> Response {
    let now_s = gb_runtime::now_ms() / 1_000;
    let address = session::client_address(&headers, peer.and_then(|peer| peer.0.0));
    if let Some(wait_s) = state.console.login_limiter.wait_s(address, now_s) {
        let mut response = form(
            &state,
            &headers,
            uri.query(),
            StatusCode::TOO_MANY_REQUESTS,
            Some(|t| t.login_limited),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
        return response;
    }
    let lifetime_s = i64::try_from(
        state
            .settings
            .current()
            .gateway
            .admin_session_expire
            .0
            .as_secs(),
    )
    .unwrap_or(3_600);
    let nonce = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let verdict = super::sessions(&state, |sessions| {
        if nonce.is_empty() || !sessions.csrf_matches(&format!("login:{nonce}"), &login.csrf) {
            Verdict::FormExpired
        } else if !sessions.is_admin_token(login.token.trim()) {
            Verdict::WrongToken
        } else {
            sessions
                .start(now_s, lifetime_s)
                .map_or(Verdict::Closed, |(_, cookie)| Verdict::Started(cookie))
        }
    });
    let cookie = match verdict {
        Verdict::Started(cookie) => cookie,
        Verdict::FormExpired => {
            return form(
                &state,
                &headers,
                uri.query(),
                StatusCode::FORBIDDEN,
                Some(|t| t.login_expired_form),
            );
        }
        Verdict::WrongToken => {
            state.console.login_limiter.failed(address, now_s);
            tracing::warn!(%address, "a console login failed");
            return form(
                &state,
                &headers,
                uri.query(),
                StatusCode::UNAUTHORIZED,
                Some(|t| t.login_wrong),
            );
        }
        Verdict::Closed => {
            return form(&state, &headers, uri.query(), StatusCode::FORBIDDEN, None);
        }
    };
    let secure = session::over_https(&headers, &uri);
    let mut response = Redirect::to("/console/keys").into_response();
    for value in [
        session::set_cookie(SESSION_COOKIE, &cookie, lifetime_s, secure),
        session::set_cookie(LOGIN_COOKIE, "", 0, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn log_out(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = super::session_of(&state, &headers) else {
        return Redirect::to("/").into_response();
    };
    if !super::csrf_matches(&state, &session, &form.csrf) {
        return (StatusCode::FORBIDDEN, "CSRF token missing or wrong").into_response();
    }
    let mut response = Redirect::to("/").into_response();
    let cleared = session::set_cookie(SESSION_COOKIE, "", 0, session::over_https(&headers, &uri));
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
