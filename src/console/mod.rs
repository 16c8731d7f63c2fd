//! The admin console, `/ui`: a server-rendered page and a small hand-written script (no
//! framework, no build step) that calls `/api/v1` with the session cookie and refreshes every
//! few seconds. Every asset is compiled in; the pages load nothing from elsewhere, and their
//! Content-Security-Policy allows nothing else.
//!
//! - `GET /ui`: the console (signed in; else a redirect to the sign-in page).
//! - `GET /ui/sign-in`, `POST /ui/sign-in` (a form with `token`): sets the session cookie and
//!   redirects to `/ui`; wrong tokens count towards the lock-out of [`crate::api::auth`].
//! - `POST /ui/sign-out`.
//! - `GET /ui/assets/console.css`, `GET /ui/assets/console.js`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::auth::{self, Denied};
use crate::api::Ctx;

const PAGE: &str = include_str!("assets/console.html");
const SIGN_IN: &str = include_str!("assets/sign-in.html");
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The pages' Content-Security-Policy: nothing from elsewhere, no inline script or style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `/ui...`.
pub fn router(ctx: Ctx) -> Router {
    let signed_in = Router::new()
        .route("/ui", get(console))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/sign-out", axum::routing::post(sign_out))
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            require_ui,
        ));
    let open = Router::new()
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/assets/console.css", get(|| asset("text/css", CSS)))
        .route(
            "/ui/assets/console.js",
            get(|| asset("text/javascript", JS)),
        )
        .route_layer(axum::middleware::from_fn_with_state(ctx.clone(), gate));
    signed_in
        .merge(open)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(ctx)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null`
        // with the console's own form posts, which the cross-origin check must refuse.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            format!("{content_type}; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page saying why it was refused.
fn refused(denied: &Denied) -> Response {
    let mut response = sign_in_form(denied.status(), Some(&denied.message()));
    if let Some(secs) = denied.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn sign_in_form(status: StatusCode, message: Option<&str>) -> Response {
    let message = message.map_or_else(String::new, |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m))
    });
    (status, Html(SIGN_IN.replace("{{message}}", &message))).into_response()
}

/// The console's pages: signed in, or sent to the sign-in page.
async fn require_ui(
    State(ctx): State<Ctx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let token = auth::token_of(&ctx);
    let checked = ctx.auth.check(
        token.as_ref(),
        request.method(),
        request.headers(),
        peer.ip(),
    );
    match checked {
        Ok(()) => next.run(request).await,
        Err(Denied::Unauthorized(_)) if request.method() == Method::GET => {
            Redirect::to("/ui/sign-in").into_response()
        }
        Err(denied) => refused(&denied),
    }
}

/// The open pages and assets: refused only without a token on a non-loopback address.
async fn gate(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    match ctx.auth.forbidden(auth::token_of(&ctx).as_ref()) {
        Some(why) => refused(&Denied::Forbidden(why)),
        None => next.run(request).await,
    }
}

async fn console(State(ctx): State<Ctx>) -> Response {
    let signed = auth::token_of(&ctx).is_some();
    let sign_out = if signed {
        "<form method=\"post\" action=\"/ui/sign-out\"><button type=\"submit\" id=\"sign-out\" class=\"secondary\">Sign out</button></form>"
    } else {
        ""
    };
    let page = PAGE
        .replace("{{sign_out}}", sign_out)
        .replace("{{version}}", &escape(env!("CARGO_PKG_VERSION")));
    Html(page).into_response()
}

async fn sign_in_page(State(ctx): State<Ctx>) -> Response {
    if auth::token_of(&ctx).is_none() {
        // Nothing to sign in with: the console is open on this loopback address.
        return Redirect::to("/ui").into_response();
    }
    sign_in_form(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(ctx): State<Ctx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    if let Err(denied) = auth::same_origin(&Method::POST, &headers) {
        return refused(&denied);
    }
    let Some(token) = auth::token_of(&ctx) else {
        return Redirect::to("/ui").into_response();
    };
    match ctx.auth.sign_in(&token, &form.token, peer.ip()) {
        Ok(id) => {
            let cookie = auth::session_cookie(&id, &headers);
            let mut response = Redirect::to("/ui").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(denied) => refused(&denied),
    }
}

async fn sign_out(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    ctx.auth.sign_out(&headers);
    let mut response = Redirect::to("/ui/sign-in").into_response();
    if let Ok(value) = HeaderValue::from_str(&auth::cleared_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for (name, text) in [
            ("html", PAGE),
            ("sign-in", SIGN_IN),
            ("css", CSS),
            ("js", JS),
        ] {
            for external in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(external), "{name} refers to {external}");
            }
        }
        assert!(!PAGE.contains("<script>") && !PAGE.contains("style="));
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn controls_carry_their_visible_names() {
        for name in [">Retry all<", "\"Payload\""] {
            assert!(PAGE.contains(name) || JS.contains(name), "{name}");
        }
        for name in ["\"Resume\"", "\"Retry\"", "\"Purge\"", "\"Preview\""] {
            assert!(JS.contains(name), "{name}");
        }
        assert!(SIGN_IN.contains(">Sign in</button>"));
    }
}
