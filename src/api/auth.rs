//! Who may use `/ui` and `/api/v1`.
//!
//! - With `server.admin_token`: a request carries it as `Authorization: Bearer <token>`, or
//!   the session cookie the console's sign-in sets (HttpOnly, SameSite=Strict, a random id
//!   kept in memory for [`SESSION_TTL`], valid only while the token it was signed in with is
//!   the configured one). Tokens are compared in constant time.
//! - Without one: allowed only when the server listens on a loopback address; elsewhere every
//!   request is refused with 403 and why (the start-up log says it too).
//! - Whatever the token: a state-changing request (not GET or HEAD) whose `Origin` is not this
//!   server, or whose `Sec-Fetch-Site` is `cross-site` or `same-site`, is refused (CSRF). A
//!   request without either (curl, the CLI) is fine.
//! - [`MAX_FAILURES`] wrong tokens (sign-in or bearer) from one client address within
//!   [`FAILURE_WINDOW`] lock that address out for the rest of the window: 429, `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{ApiError, Ctx};
use crate::secret::Secret;

/// The session cookie's name.
pub const COOKIE: &str = "devin_notify_session";
/// How long a console session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Wrong tokens from one address within [`FAILURE_WINDOW`] before it is locked out.
pub const MAX_FAILURES: usize = 5;
/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The most sessions kept (the oldest go first).
const MAX_SESSIONS: usize = 1000;
/// The most client addresses whose failures are remembered.
const MAX_CLIENTS: usize = 10_000;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token is configured and the server is not on a loopback address (403).
    Forbidden(String),
    /// A state-changing request from another origin (403).
    CrossOrigin(String),
    /// No credentials, or wrong ones (401).
    Unauthorized(String),
    /// Too many wrong tokens from this address: retry after this long (429).
    TooMany(Duration),
}

impl Denied {
    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Forbidden(_) | Denied::CrossOrigin(_) => StatusCode::FORBIDDEN,
            Denied::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Denied::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Why, for people.
    pub fn message(&self) -> String {
        match self {
            Denied::Forbidden(why) | Denied::CrossOrigin(why) | Denied::Unauthorized(why) => {
                why.clone()
            }
            Denied::TooMany(wait) => format!(
                "too many wrong tokens from this address: try again in {}s",
                retry_secs(*wait)
            ),
        }
    }

    /// `Retry-After`, in seconds, for 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Denied::TooMany(wait) => Some(retry_secs(*wait)),
            _ => None,
        }
    }
}

fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        ApiError {
            status: d.status(),
            message: d.message(),
            retry_after: d.retry_after(),
        }
    }
}

/// A signed-in console session.
struct Session {
    expires: Instant,
    /// The digest of the token it signed in with.
    token: [u8; 32],
}

/// The server's access rules and its state: sessions, failed attempts.
pub struct Auth {
    listen: SocketAddr,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Auth {
    /// The rules of a server bound to `listen`.
    pub fn new(listen: SocketAddr) -> Auth {
        Auth {
            listen,
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Why every request is refused, when it is: no token on a non-loopback address.
    pub fn forbidden(&self, token: Option<&Secret>) -> Option<String> {
        (token.is_none() && !self.listen.ip().is_loopback()).then(|| {
            format!(
                "no server.admin_token is set and server.listen ({}) is not a loopback address: \
                 /ui and /api are refused; set server.admin_token, or listen on 127.0.0.1",
                self.listen
            )
        })
    }

    /// Whether a request may go on, given the configured token.
    pub fn check(
        &self,
        token: Option<&Secret>,
        method: &Method,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<(), Denied> {
        if let Some(why) = self.forbidden(token) {
            return Err(Denied::Forbidden(why));
        }
        same_origin(method, headers)?;
        let Some(token) = token else {
            return Ok(());
        };
        if let Some(offered) = bearer(headers) {
            return self.try_token(token, offered, peer);
        }
        if self.session_ok(headers, token) {
            return Ok(());
        }
        Err(Denied::Unauthorized(
            "sign in at /ui/sign-in, or send Authorization: Bearer <server.admin_token>".into(),
        ))
    }

    /// Checks an offered token, counting a wrong one against `peer`.
    fn try_token(&self, token: &Secret, offered: &str, peer: IpAddr) -> Result<(), Denied> {
        if let Some(wait) = self.locked(peer) {
            return Err(Denied::TooMany(wait));
        }
        if ct_eq(offered, token.expose()) {
            return Ok(());
        }
        self.failed(peer);
        tracing::warn!(client = %peer, "admin API: a wrong token was offered");
        Err(Denied::Unauthorized("wrong token".into()))
    }

    /// The console's sign-in: a new session's id when `offered` is the token.
    pub fn sign_in(&self, token: &Secret, offered: &str, peer: IpAddr) -> Result<String, Denied> {
        self.try_token(token, offered, peer)?;
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                expires: now + SESSION_TTL,
                token: digest(token.expose()),
            },
        );
        tracing::info!(client = %peer, "admin console: signed in");
        Ok(id)
    }

    /// Ends the session of the request's cookie.
    pub fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            lock(&self.sessions).remove(id);
        }
    }

    fn session_ok(&self, headers: &HeaderMap, token: &Secret) -> bool {
        let Some(id) = cookie(headers, COOKIE) else {
            return false;
        };
        let sessions = lock(&self.sessions);
        sessions.get(id).is_some_and(|s| {
            s.expires > Instant::now() && digest_eq(&s.token, &digest(token.expose()))
        })
    }

    /// How long `peer` stays locked out, if it is.
    fn locked(&self, peer: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        let times = failures.get_mut(&peer)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        let oldest = *times.front()?;
        (times.len() >= MAX_FAILURES).then(|| FAILURE_WINDOW - now.duration_since(oldest))
    }

    fn failed(&self, peer: IpAddr) {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_CLIENTS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
        }
        let times = failures.entry(peer).or_default();
        times.push_back(now);
        if times.len() > MAX_FAILURES {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            tracing::warn!(client = %peer, "admin API: too many wrong tokens; this address is locked out for a minute");
        }
    }
}

/// Refuses a state-changing request from another origin.
pub fn same_origin(method: &Method, headers: &HeaderMap) -> Result<(), Denied> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return Err(Denied::CrossOrigin(format!(
                "refused: a {method} request from another site (Sec-Fetch-Site: {site})"
            )));
        }
    }
    let Some(origin) = text("origin") else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let ours = [text("host"), text("x-forwarded-host")];
    let matches =
        origin_host.is_some_and(|o| ours.iter().flatten().any(|h| h.eq_ignore_ascii_case(o)));
    if matches {
        Ok(())
    } else {
        Err(Denied::CrossOrigin(format!(
            "refused: a {method} request from another origin ({})",
            crate::redact::snippet(origin.as_bytes())
        )))
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A cookie's value.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new session (`Secure` when the request came over HTTPS through
/// a proxy that says so).
pub fn session_cookie(id: &str, headers: &HeaderMap) -> String {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if https { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn digest_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether two strings are equal, in a time that does not depend on where they differ (their
/// digests are compared).
pub fn ct_eq(a: &str, b: &str) -> bool {
    digest_eq(&digest(a), &digest(b))
}

/// The configured admin token.
pub fn token_of(ctx: &Ctx) -> Option<Secret> {
    ctx.active.borrow().config.server.admin_token.clone()
}

/// The middleware of `/api/v1` (and the deprecated `/admin`): JSON errors.
pub async fn require_api(
    State(ctx): State<Ctx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let token = token_of(&ctx);
    match ctx.auth.check(
        token.as_ref(),
        request.method(),
        request.headers(),
        peer.ip(),
    ) {
        Ok(()) => next.run(request).await,
        Err(denied) => ApiError::from(denied).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn loopback_without_token_is_open_elsewhere_forbidden() {
        let local = Auth::new("127.0.0.1:9464".parse().expect("addr"));
        assert_eq!(local.check(None, &Method::GET, &headers(&[]), PEER), Ok(()));
        let open = Auth::new("0.0.0.0:9464".parse().expect("addr"));
        let denied = open.check(None, &Method::GET, &headers(&[]), PEER);
        assert!(
            matches!(denied, Err(Denied::Forbidden(ref m)) if m.contains("server.admin_token"))
        );
    }

    #[test]
    fn bearer_cookie_and_lockout() {
        let auth = Auth::new("0.0.0.0:9464".parse().expect("addr"));
        let token = Secret::new("s3cret-token");
        let get =
            |h: &[(&'static str, &str)]| auth.check(Some(&token), &Method::GET, &headers(h), PEER);
        assert!(matches!(get(&[]), Err(Denied::Unauthorized(_))));
        assert_eq!(get(&[("authorization", "Bearer s3cret-token")]), Ok(()));
        let id = auth
            .sign_in(&token, "s3cret-token", PEER)
            .expect("signed in");
        let with_cookie = format!("a=b; {COOKIE}={id}");
        assert_eq!(get(&[("cookie", with_cookie.as_str())]), Ok(()));
        // A changed token ends the sessions signed in with the old one.
        let other = Secret::new("another-token");
        let h = headers(&[("cookie", with_cookie.as_str())]);
        assert!(auth.check(Some(&other), &Method::GET, &h, PEER).is_err());
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                get(&[("authorization", "Bearer nope")]),
                Err(Denied::Unauthorized(_))
            ));
        }
        let locked = get(&[("authorization", "Bearer s3cret-token")]);
        assert!(matches!(locked, Err(Denied::TooMany(_))), "{locked:?}");
        assert!(auth.sign_in(&token, "s3cret-token", PEER).is_err());
        // Another address is not locked out.
        let elsewhere: IpAddr = "10.0.0.9".parse().expect("ip");
        assert!(auth.sign_in(&token, "s3cret-token", elsewhere).is_ok());
    }

    #[test]
    fn state_changes_from_other_origins_are_refused() {
        let post = |h: &[(&'static str, &str)]| same_origin(&Method::POST, &headers(h));
        assert_eq!(post(&[]), Ok(()));
        assert_eq!(
            post(&[
                ("host", "127.0.0.1:9464"),
                ("origin", "http://127.0.0.1:9464")
            ]),
            Ok(())
        );
        assert!(post(&[
            ("host", "127.0.0.1:9464"),
            ("origin", "https://evil.example")
        ])
        .is_err());
        assert!(post(&[("host", "127.0.0.1:9464"), ("origin", "null")]).is_err());
        assert!(post(&[("sec-fetch-site", "cross-site")]).is_err());
        assert_eq!(post(&[("sec-fetch-site", "same-origin")]), Ok(()));
        let get = same_origin(
            &Method::GET,
            &headers(&[("origin", "https://evil.example")]),
        );
        assert_eq!(get, Ok(()));
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
