//! The console's session: an opaque random id in a cookie, signed with the server's secret so
//! that every gateway replica accepts it without shared state, expiring after
//! `ADMIN_SESSION_EXPIRE`, and bound to the admin token (a changed `AUTH_TOKEN` ends every
//! session). The CSRF token of a session is a keyed hash of its id; the login form's, of a
//! nonce in a cookie of its own. Failed logins are limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::HeaderMap;
use gb_runtime::secrets::{KeyCipher, tokens_match};

pub const SESSION_COOKIE: &str = "gb_session";
pub const LOGIN_COOKIE: &str = "gb_login";

/// A session the cookie proves.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub expires_s: i64,
}

/// Signs and checks sessions and CSRF tokens with the server's secret (the same on every
/// replica) and the admin token's fingerprint.
pub struct Sessions<'a> {
    pub names: &'a KeyCipher,
    /// `None`: no admin token, no session.
    pub admin_token: Option<&'a str>,
}

impl Sessions<'_> {
    fn signature(&self, purpose: &str, payload: &str) -> Option<String> {
        let admin = self.names.fingerprint(self.admin_token?);
        Some(
            self.names
                .fingerprint(&format!("gb-console/{purpose}\n{admin}\n{payload}")),
        )
    }

    /// A new session until `now_s + lifetime_s`, as its cookie value.
    pub fn start(&self, now_s: i64, lifetime_s: i64) -> Option<(Session, String)> {
        let session = Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            expires_s: now_s + lifetime_s,
        };
        let payload = format!("{}.{}", session.id, session.expires_s);
        let signature = self.signature("session", &payload)?;
        Some((session, format!("{payload}.{signature}")))
    }

    /// The session a cookie value proves at `now_s`: signed here, not expired.
    pub fn check(&self, cookie: &str, now_s: i64) -> Option<Session> {
        let (payload, signature) = cookie.rsplit_once('.')?;
        let (id, expires) = payload.split_once('.')?;
        let expires_s: i64 = expires.parse().ok()?;
        let expected = self.signature("session", payload)?;
        (tokens_match(signature, &expected) && expires_s > now_s).then(|| Session {
            id: id.to_owned(),
            expires_s,
        })
    }

    /// The CSRF token of a session (or of a login form's nonce).
    pub fn csrf(&self, id: &str) -> String {
        self.signature("csrf", id).unwrap_or_default()
    }

    /// Whether a presented CSRF token is the session's.
    pub fn csrf_matches(&self, id: &str, presented: &str) -> bool {
        let expected = self.csrf(id);
        !expected.is_empty() && tokens_match(presented, &expected)
    }

    /// Whether the admin token was typed at the login form.
    pub fn is_admin_token(&self, presented: &str) -> bool {
        self.admin_token
            .is_some_and(|admin| !presented.is_empty() && tokens_match(presented, admin))
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request came over https (directly or through a proxy that says so).
pub fn over_https(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure over https; `max_age_s`
/// 0 removes it.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Failed logins per client address: at most `MAX_FAILURES` in `WINDOW_S`, then the address
/// waits for the window's end.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

const MAX_FAILURES: u32 = 5;
const WINDOW_S: i64 = 300;
/// Addresses remembered at most (past it, the windows that have ended are dropped first).
const MAX_ADDRESSES: usize = 100_000;

impl LoginLimiter {
    /// Seconds the address must wait before it may try again, if it must.
    pub fn wait_s(&self, address: IpAddr, now_s: i64) -> Option<i64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (started_s, count) = *failures.get(&address)?;
        let ends_s = started_s + WINDOW_S;
        (count >= MAX_FAILURES && ends_s > now_s).then_some(ends_s - now_s)
    }

    pub fn failed(&self, address: IpAddr, now_s: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, (started_s, _)| *started_s + WINDOW_S > now_s);
            if failures.len() >= MAX_ADDRESSES {
                failures.clear();
            }
        }
        let entry = failures.entry(address).or_insert((now_s, 0));
        if entry.0 + WINDOW_S <= now_s {
            *entry = (now_s, 0);
        }
        entry.1 += 1;
    }
}

/// The client's address: the peer of the connection, or, when that peer is a proxy on a
/// private or loopback address (an Ingress), the address it appended to `X-Forwarded-For`.
pub fn client_address(headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
    let unspecified = IpAddr::from([0u8, 0, 0, 0]);
    let peer_is_proxy = peer.is_none_or(|peer| match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    });
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .next_back();
    match (peer_is_proxy, forwarded) {
        (true, Some(forwarded)) => forwarded,
        _ => peer.unwrap_or(unspecified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> KeyCipher {
        let Ok(cipher) = KeyCipher::from_base64(&KeyCipher::generate_base64()) else {
            panic!("a generated key is valid");
        };
        cipher
    }

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_as_signed() {
        let names = cipher();
        let sessions = Sessions {
            names: &names,
            admin_token: Some("sk-admin"),
        };
        let Some((session, cookie)) = sessions.start(1_000, 3_600) else {
            panic!("an admin token is set");
        };
        assert!(!cookie.contains("sk-admin"));
        assert_eq!(
            sessions.check(&cookie, 4_599).map(|s| s.id),
            Some(session.id.clone())
        );
        assert!(sessions.check(&cookie, 4_600).is_none(), "expired");
        let forged_expiry = cookie.replacen(".4600.", ".9999.", 1);
        assert!(sessions.check(&forged_expiry, 5_000).is_none());
        let other_replica = Sessions {
            names: &names,
            admin_token: Some("sk-admin"),
        };
        assert!(other_replica.check(&cookie, 2_000).is_some());
        let token_changed = Sessions {
            names: &names,
            admin_token: Some("sk-admin-2"),
        };
        assert!(token_changed.check(&cookie, 2_000).is_none());
        let other_secret = cipher();
        let other_server = Sessions {
            names: &other_secret,
            admin_token: Some("sk-admin"),
        };
        assert!(other_server.check(&cookie, 2_000).is_none());
        assert!(sessions.csrf_matches(&session.id, &sessions.csrf(&session.id)));
        assert!(!sessions.csrf_matches(&session.id, ""));
        assert!(!sessions.csrf_matches("other", &sessions.csrf(&session.id)));
    }

    #[test]
    fn failed_logins_are_limited_per_address_for_a_window() {
        let limiter = LoginLimiter::default();
        let (one, two) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..MAX_FAILURES {
            assert_eq!(limiter.wait_s(one, 100), None);
            limiter.failed(one, 100);
        }
        assert_eq!(limiter.wait_s(one, 100), Some(WINDOW_S));
        assert_eq!(
            limiter.wait_s(two, 100),
            None,
            "another address is not held"
        );
        assert_eq!(
            limiter.wait_s(one, 100 + WINDOW_S),
            None,
            "the window ended"
        );
    }

    #[test]
    fn the_client_address_is_the_proxys_last_hop_only_behind_a_private_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8".parse().unwrap_or_else(|_| panic!()),
        );
        let ingress = Some(IpAddr::from([10, 1, 2, 3]));
        assert_eq!(
            client_address(&headers, ingress),
            IpAddr::from([5, 6, 7, 8])
        );
        let public = Some(IpAddr::from([9, 9, 9, 9]));
        assert_eq!(client_address(&headers, public), IpAddr::from([9, 9, 9, 9]));
    }
}

/// The peer address of a request's connection, put in its extensions by `serve.rs`.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);
