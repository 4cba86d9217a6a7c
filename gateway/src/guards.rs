//! The middleware of each route's caller: a client token the way each family sends it (with
//! the family's 401 shape), the admin token, or the console's session (its CSRF token on
//! changes); `router.rs` puts each on its routes.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::{
    anthropic_error, anthropic_from_status, google_error, google_from_status, openai_error,
    openai_from_status,
};
use crate::managed_tokens::Refusal;
use crate::request_log::{as_caller, name_caller};
use crate::router::gemini_family;
use crate::state::GatewayState;

/// The client a request's token names: one of `ALLOWED_TOKENS` (or the admin token), else a
/// managed client token that may call now.
fn caller_of(state: &GatewayState, request: &Request) -> Result<crate::auth::Caller, Refusal> {
    let (headers, query) = (request.headers(), request.uri().query());
    if let Some(caller) = state.auth.get().client(headers, query) {
        return Ok(caller);
    }
    if state.managed_tokens.is_empty() {
        return Err(Refusal::Unknown);
    }
    let presented = crate::auth::presented_client_token(headers, query).ok_or(Refusal::Unknown)?;
    let token = state
        .managed_tokens
        .admit(&state.names.fingerprint(&presented), gb_runtime::now_ms())?;
    let mut caller = crate::auth::Caller::named(token.caller.clone());
    caller.allowed_models = token
        .spec
        .as_ref()
        .map(|spec| spec.models.clone())
        .unwrap_or_default();
    Ok(caller)
}

/// A managed token's limit, answered in the family's shape (`answer` turns the status into
/// it), or the family's 401.
fn refused(
    refusal: Refusal,
    unknown: Response,
    answer: fn(&tonic::Status) -> Response,
) -> Response {
    match refusal {
        Refusal::Unknown => unknown,
        Refusal::Limited(error) => answer(&tonic::Status::from(error)),
    }
}

pub(crate) async fn require_client(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    match caller_of(&state, &request) {
        Ok(caller) => as_caller(caller, request, next).await,
        Err(refusal) => refused(
            refusal,
            google_error(401, UNAUTHENTICATED),
            google_from_status,
        ),
    }
}

/// Google's upload endpoint: a session's chunks carry their `upload_id` (the credential, as
/// at Google: the SDKs send no key with them); anything else needs a client token.
pub(crate) async fn require_client_or_session(
    state: State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    if crate::files::google_upload::upload_id(request.uri().query()).is_some() {
        name_caller(&request, "upload-session");
        return next.run(request).await;
    }
    require_client(state, request, next).await
}

/// The design's `/files`: a client token, or the console's session as the admin caller (its
/// CSRF token on uploads and deletes), so that the files page works with the same routes.
pub(crate) async fn require_client_or_console(
    state: State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    if crate::auth::presented_client_token(request.headers(), request.uri().query()).is_some() {
        return require_client(state, request, next).await;
    }
    match crate::console::session_access(&state, &request) {
        crate::console::SessionAccess::Allowed => {}
        crate::console::SessionAccess::CsrfRefused => {
            return google_error(403, crate::console::CSRF_REFUSED);
        }
        crate::console::SessionAccess::NoSession => {
            return require_client(state, request, next).await;
        }
    }
    let admin = crate::auth::Caller::named(state.auth.get().admin_name().to_owned());
    as_caller(admin, request, next).await
}

pub(crate) async fn require_client_any_family(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    match caller_of(&state, &request) {
        Ok(caller) => as_caller(caller, request, next).await,
        Err(refusal) if gemini_family(request.headers(), request.uri().query()) => refused(
            refusal,
            google_error(401, UNAUTHENTICATED),
            google_from_status,
        ),
        Err(refusal) => refused(
            refusal,
            openai_error(
                401,
                "Incorrect API key provided: pass one of the gateway's ALLOWED_TOKENS as Authorization: Bearer",
            ),
            openai_from_status,
        ),
    }
}

pub(crate) async fn require_client_anthropic(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    match caller_of(&state, &request) {
        Ok(caller) => as_caller(caller, request, next).await,
        Err(refusal) => refused(
            refusal,
            anthropic_error(
                401,
                "invalid x-api-key: pass one of the gateway's ALLOWED_TOKENS as x-api-key or Authorization: Bearer",
            ),
            anthropic_from_status,
        ),
    }
}

const UNAUTHENTICATED: &str = "API key not valid: pass one of the gateway's ALLOWED_TOKENS as x-goog-api-key, key= or Authorization: Bearer";

/// The admin token's check, refusing in the family's shape (`refuse`).
async fn admin_only(
    state: &GatewayState,
    request: Request,
    next: Next,
    refuse: fn(u16, &str) -> Response,
) -> Response {
    if !state.auth.get().is_admin(request.headers()) {
        // The console's pages call the admin API with their session, and with its CSRF
        // token on anything that changes state.
        match crate::console::session_access(state, &request) {
            crate::console::SessionAccess::Allowed => {}
            crate::console::SessionAccess::CsrfRefused => {
                return refuse(403, crate::console::CSRF_REFUSED);
            }
            crate::console::SessionAccess::NoSession => {
                return refuse(
                    401,
                    "this route needs the admin token (AUTH_TOKEN) in Authorization",
                );
            }
        }
    }
    // The admin API's searches reach the database; a NUL is text no backend stores (Postgres
    // fails on it), so it is the caller's error.
    let holds_nul = request.uri().query().is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name.contains('\0') || value.contains('\0'))
    });
    if holds_nul {
        return refuse(400, "a query parameter holds a NUL character");
    }
    name_caller(&request, "admin");
    next.run(request).await
}

pub(crate) async fn require_admin(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    admin_only(&state, request, next, google_error).await
}

pub(crate) async fn require_admin_openai(
    State(state): State<GatewayState>,
    request: Request,
    next: Next,
) -> Response {
    admin_only(&state, request, next, openai_error).await
}

/// `GET /keys` is the original design's JSON API; a browser that opens it (gemini-balance's
/// bookmark) is sent to the console's keys page.
pub(crate) async fn keys_page_for_browsers(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::GET
        && request.uri().path() == "/keys"
        && crate::console::is_browser(request.headers())
    {
        return axum::response::Redirect::to("/console/keys").into_response();
    }
    next.run(request).await
}
