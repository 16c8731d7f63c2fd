//! The admin API (`/api/v1`) and console (`/ui`) of the running service, over real HTTP: who
//! may use them (bearer token, the console's cookie, 403 without a token off loopback, the
//! sign-in lock-out), cross-origin refusals, each action seen through to the receivers, and no
//! secret in any answer.

use crate::harness;
use crate::support;

use std::time::Duration;

use harness::{free_port, Env, Service, SECRET, TOKEN};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use support::{session, Reply};

const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "adm_Zq7xV2pL9tR4wK8s";

const RULES: &str = r#"
[[rules]]
name = "all"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["hook"]
"#;

/// An env whose service listens on `ip` (with the admin token when `token`), polling fast;
/// returns it with the base URL to reach it (on 127.0.0.1).
async fn served(ip: &str, token: bool) -> (Env, String) {
    let mut env = Env::start(RULES).await;
    let port = free_port();
    let admin = if token {
        format!("admin_token = \"{ADMIN}\"\n")
    } else {
        String::new()
    };
    env.set_extra(&format!("[server]\nlisten = \"{ip}:{port}\"\n{admin}"));
    env.tweak("poll_interval = \"1s\"", "poll_interval = \"200ms\"");
    (env, format!("http://127.0.0.1:{port}"))
}

/// A client that follows no redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// One answer: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends a request with these headers (and a JSON body when given).
async fn call(
    method: Method,
    url: &str,
    headers: &[(&'static str, &str)],
    body: Option<Value>,
) -> Answer {
    let mut request = client().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, HeaderValue::from_str(value).expect("header"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the service answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap_or_default(),
    }
}

fn bearer() -> String {
    format!("Bearer {ADMIN}")
}

async fn get_api(base: &str, path: &str) -> Answer {
    call(
        Method::GET,
        &format!("{base}/api/v1{path}"),
        &[("authorization", &bearer())],
        None,
    )
    .await
}

async fn post_api(base: &str, path: &str, body: Option<Value>) -> Answer {
    call(
        Method::POST,
        &format!("{base}/api/v1{path}"),
        &[("authorization", &bearer())],
        body,
    )
    .await
}

/// Polls `GET path` until `ok` holds on its JSON.
async fn api_until(base: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let answer = get_api(base, path).await;
        if answer.status == 200 && ok(&answer.json()) {
            return answer.json();
        }
        assert!(
            start.elapsed() < WAIT,
            "{path}: last answer {}: {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in at the console's form; returns the answer.
async fn sign_in(base: &str, token: &str, origin: Option<&str>) -> Answer {
    let mut request = client()
        .post(format!("{base}/ui/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("the service answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_or_the_consoles_cookie_is_required() {
    let (env, base) = served("127.0.0.1", true).await;
    let service = Service::start(&env);
    service.wait_log("serving /healthz", 1, WAIT).await;
    let status = |a: &Answer| a.status;

    // No token, a wrong one: 401 with a JSON error. The right one: the status.
    let none = call(Method::GET, &format!("{base}/api/v1/status"), &[], None).await;
    assert_eq!(status(&none), 401, "{}", none.body);
    assert!(none.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("sign in")));
    assert_eq!(none.header("www-authenticate"), "Bearer");
    let wrong = call(
        Method::GET,
        &format!("{base}/api/v1/status"),
        &[("authorization", "Bearer nope")],
        None,
    )
    .await;
    assert_eq!(status(&wrong), 401);
    assert_eq!(wrong.json()["error"], "wrong token");
    let s = api_until(&base, "/status", |s| s["last_poll"]["outcome"] == "ok").await;
    assert_eq!(s["role"], "leader");
    assert_eq!(s["ready"], true);
    assert!(
        s["next_poll"].is_string() || s["polling_since"].is_string(),
        "{s}"
    );

    // The console sends an unsigned visitor to its sign-in page.
    let page = call(Method::GET, &format!("{base}/ui"), &[], None).await;
    assert_eq!(status(&page), 303);
    assert_eq!(page.header("location"), "/ui/sign-in");
    let form = call(Method::GET, &format!("{base}/ui/sign-in"), &[], None).await;
    assert_eq!(status(&form), 200);
    assert!(form.body.contains("name=\"token\"") && form.body.contains(">Sign in</button>"));

    // Signing in sets an HttpOnly, SameSite=Strict cookie that opens the console and the API.
    let signed = sign_in(&base, ADMIN, Some(&base)).await;
    assert_eq!(status(&signed), 303, "{}", signed.body);
    assert_eq!(signed.header("location"), "/ui");
    let cookie = signed.header("set-cookie").to_owned();
    for part in [
        "devin_notify_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    let pair = cookie.split(';').next().expect("cookie pair").to_owned();
    let page = call(
        Method::GET,
        &format!("{base}/ui"),
        &[("cookie", &pair)],
        None,
    )
    .await;
    assert_eq!(status(&page), 200);
    for text in [
        "id=\"sinks\"",
        "id=\"dead-letters\"",
        "id=\"rules\"",
        "Retry all",
    ] {
        assert!(page.body.contains(text), "{text} missing");
    }
    assert!(page
        .header("content-security-policy")
        .contains("default-src 'none'"));
    let sinks = call(
        Method::GET,
        &format!("{base}/api/v1/sinks"),
        &[("cookie", &pair)],
        None,
    )
    .await;
    assert_eq!(status(&sinks), 200, "{}", sinks.body);
    let js = call(
        Method::GET,
        &format!("{base}/ui/assets/console.js"),
        &[],
        None,
    )
    .await;
    assert_eq!(status(&js), 200);
    assert!(js.header("content-type").starts_with("text/javascript"));

    // Signing out ends the session.
    let out = call(
        Method::POST,
        &format!("{base}/ui/sign-out"),
        &[("cookie", &pair), ("origin", &base)],
        None,
    )
    .await;
    assert_eq!(status(&out), 303);
    let after = call(
        Method::GET,
        &format!("{base}/api/v1/sinks"),
        &[("cookie", &pair)],
        None,
    )
    .await;
    assert_eq!(status(&after), 401);

    // Health, readiness and metrics stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let open = call(Method::GET, &format!("{base}{path}"), &[], None).await;
        assert_eq!(status(&open), 200, "{path}: {}", open.body);
    }
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
    assert!(!log.contains(ADMIN), "the token was logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_rate_limited() {
    let (env, base) = served("127.0.0.1", true).await;
    let service = Service::start(&env);
    service.wait_log("serving /healthz", 1, WAIT).await;
    for _ in 0..5 {
        let wrong = sign_in(&base, "guess", None).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
        assert!(wrong.body.contains("wrong token"), "{}", wrong.body);
    }
    // Locked out for the rest of the minute, even with the right token, form or bearer.
    let locked = sign_in(&base, ADMIN, None).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    let retry_after: u64 = locked.header("retry-after").parse().expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let api = get_api(&base, "/status").await;
    assert_eq!(api.status, 429);
    assert!(api.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("too many")));
    assert!(!api.header("retry-after").is_empty());
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
    assert!(log.contains("locked out"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_off_loopback_the_console_and_api_are_refused() {
    let (env, base) = served("0.0.0.0", false).await;
    let service = Service::start(&env);
    let log = service
        .wait_log("no server.admin_token is set", 1, WAIT)
        .await;
    assert!(log.contains("is not a loopback address"), "{log}");
    for path in ["/ui", "/ui/sign-in", "/ui/assets/console.js"] {
        let page = call(Method::GET, &format!("{base}{path}"), &[], None).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(
            page.body.contains("server.admin_token"),
            "{path}: {}",
            page.body
        );
    }
    let api = call(Method::GET, &format!("{base}/api/v1/status"), &[], None).await;
    assert_eq!(api.status, 403);
    assert!(api.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("server.admin_token")));
    // A bearer token does not help when none is configured.
    let api = get_api(&base, "/sinks").await;
    assert_eq!(api.status, 403);
    // The deprecated endpoints are served on loopback addresses only.
    let legacy = call(Method::GET, &format!("{base}/admin/sinks"), &[], None).await;
    assert_eq!(legacy.status, 404);
    for path in ["/healthz", "/metrics"] {
        let open = call(Method::GET, &format!("{base}{path}"), &[], None).await;
        assert_eq!(open.status, 200, "{path}");
    }
    // The commands go through the API and say why they cannot.
    let (code, out) = env.cli(&["sinks", "list"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("HTTP 403") && out.contains("server.admin_token"),
        "{out}"
    );
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_from_another_origin_are_refused() {
    let (env, base) = served("127.0.0.1", true).await;
    let service = Service::start(&env);
    service.wait_log("serving /healthz", 1, WAIT).await;
    let resume = format!("{base}/api/v1/sinks/hook/resume");
    let auth = bearer();
    let foreign = call(
        Method::POST,
        &resume,
        &[("authorization", &auth), ("origin", "https://evil.example")],
        None,
    )
    .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(foreign.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("another origin")));
    let cross = call(
        Method::POST,
        &resume,
        &[("authorization", &auth), ("sec-fetch-site", "cross-site")],
        None,
    )
    .await;
    assert_eq!(cross.status, 403);
    let same = call(
        Method::POST,
        &resume,
        &[
            ("authorization", &auth),
            ("origin", &base),
            ("sec-fetch-site", "same-origin"),
        ],
        None,
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.json()["was_paused"], false);
    // Signing in from another origin is refused too; reads are not state changes.
    let signed = sign_in(&base, ADMIN, Some("https://evil.example")).await;
    assert_eq!(signed.status, 403);
    assert!(signed.header("set-cookie").is_empty());
    let read = call(
        Method::GET,
        &format!("{base}/api/v1/sinks"),
        &[("authorization", &auth), ("origin", "https://evil.example")],
        None,
    )
    .await;
    assert_eq!(read.status, 200);
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_paused_by_410s_is_resumed_and_its_queue_goes_out() {
    let (mut env, base) = served("127.0.0.1", true).await;
    env.tweak("max_attempts = 3", "max_attempts = 20");
    env.api.upsert_all([session("s1"), session("s2")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.hook.set_default(Reply::Status(410, "gone".into()));
    env.api.update("s1", |s| s["status"] = json!("exit"));
    env.api.update("s2", |s| s["status"] = json!("exit"));
    let sinks = api_until(&base, "/sinks", |v| v["sinks"][0]["state"] == "paused").await;
    let hook = &sinks["sinks"][0];
    assert_eq!(hook["name"], "hook");
    assert_eq!(hook["queued"], 2);
    assert!(hook["paused_reason"]
        .as_str()
        .is_some_and(|r| r.contains("endpoint gone")));
    let status = get_api(&base, "/status").await.json();
    assert_eq!(status["paused_sinks"], 1);
    let before = env.hook.count();

    env.hook.set_default(Reply::ok());
    let resumed = post_api(&base, "/sinks/hook/resume", None).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.json()["was_paused"], true);
    let got = env
        .hook
        .wait_until(
            |r| r.iter().skip(before).filter(|r| r.was_accepted()).count() >= 2,
            WAIT,
        )
        .await;
    assert!(got[before..].iter().all(|r| r.was_accepted()));
    api_until(&base, "/sinks", |v| {
        v["sinks"][0]["state"] == "active" && v["sinks"][0]["queued"] == 0
    })
    .await;
    let unknown = post_api(&base, "/sinks/nope/resume", None).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("no sink named `nope`")));
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_shown_retried_and_purged() {
    let (env, base) = served("127.0.0.1", true).await;
    env.api
        .upsert_all([session("s1"), session("s2"), session("s3")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    env.hook.set_default(Reply::Status(400, "bad".into()));
    env.api.update("s1", |s| s["status"] = json!("exit"));
    let list = api_until(&base, "/dead-letters", |v| v["dead_letters"][0].is_object()).await;
    let letter = &list["dead_letters"][0];
    let id = letter["id"].as_str().expect("id").to_owned();
    assert_eq!(letter["sink"], "hook");
    assert_eq!(letter["session_id"], "s1");
    assert_eq!(letter["status"], 400);
    assert_eq!(letter["response_body"], "bad");
    assert_eq!(letter["event_type"], "session.status_changed");
    assert_eq!(letter["payload"]["data"]["session"]["session_id"], "s1");
    let one = get_api(&base, &format!("/dead-letters/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], id.as_str());
    assert_eq!(
        get_api(&base, "/dead-letters?sink=slack").await.json()["dead_letters"],
        json!([])
    );

    // The command lists it through the API, with the token of the config.
    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 dead letter(s)") && out.contains(&id),
        "{out}"
    );

    // Retry: delivered, under the same webhook-id.
    env.hook.set_default(Reply::ok());
    let retried = post_api(&base, &format!("/dead-letters/{id}/retry"), None).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.json()["requeued"], 1);
    let got = env
        .hook
        .wait_until(|r| r.iter().any(|r| r.was_accepted()), WAIT)
        .await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[got.len() - 1].header("webhook-id")
    );
    assert_eq!(
        get_api(&base, &format!("/dead-letters/{id}")).await.status,
        404
    );

    // Purge one; retry all of a sink.
    env.hook.set_default(Reply::Status(400, "bad".into()));
    env.api.update("s2", |s| s["status"] = json!("exit"));
    env.api.update("s3", |s| s["status"] = json!("exit"));
    let list = api_until(&base, "/dead-letters", |v| {
        v["dead_letters"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let purge_id = list["dead_letters"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let delete = format!("{base}/api/v1/dead-letters/{purge_id}");
    let purged = call(
        Method::DELETE,
        &delete,
        &[("authorization", &bearer())],
        None,
    )
    .await;
    assert_eq!(purged.status, 200, "{}", purged.body);
    assert_eq!(purged.json()["purged"], 1);
    let again = call(
        Method::DELETE,
        &delete,
        &[("authorization", &bearer())],
        None,
    )
    .await;
    assert_eq!(again.status, 404);
    env.hook.set_default(Reply::ok());
    let accepted_before = env
        .hook
        .received()
        .iter()
        .filter(|r| r.was_accepted())
        .count();
    let all = post_api(&base, "/sinks/hook/retry-dead", None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json()["requeued"], 1);
    env.hook
        .wait_until(
            |r| r.iter().filter(|r| r.was_accepted()).count() > accepted_before,
            WAIT,
        )
        .await;
    api_until(&base, "/status", |s| {
        s["dead_letters"] == 0 && s["queued"] == 0
    })
    .await;
    for body in [None, Some(json!({})), Some(json!({"ids": "x"}))] {
        let bad = post_api(&base, "/dead-letters/retry", body).await;
        assert_eq!(bad.status, 400, "{}", bad.body);
    }
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_listed_and_previewed() {
    let (env, base) = served("127.0.0.1", true).await;
    let service = Service::start(&env);
    service.wait_log("serving /healthz", 1, WAIT).await;
    let rules = get_api(&base, "/rules").await.json();
    assert_eq!(rules["rules"][0]["name"], "all");
    assert_eq!(rules["rules"][0]["sinks"], json!(["hook"]));

    // A sample of each event type the rule routes.
    let sample = post_api(&base, "/rules/all/preview", None).await;
    assert_eq!(sample.status, 200, "{}", sample.body);
    let items = sample.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len(), 5);
    assert!(items
        .iter()
        .all(|i| i["sink"] == "hook" && i["payload"]["type"].is_string()));

    // A given change; one event type.
    let mut now = session("s7");
    now["status"] = json!("exit");
    let body =
        json!({"session": now, "previous": session("s7"), "event": "session.status_changed"});
    let given = post_api(&base, "/rules/all/preview", Some(body)).await;
    assert_eq!(given.status, 200, "{}", given.body);
    let item = &given.json()["items"][0];
    assert_eq!(item["event_type"], "session.status_changed");
    assert_eq!(item["payload"]["data"]["session"]["session_id"], "s7");
    // A bare session: seen for the first time.
    let first = post_api(&base, "/rules/all/preview", Some(session("s8"))).await;
    assert_eq!(first.json()["items"][0]["event_type"], "session.created");

    assert_eq!(
        post_api(&base, "/rules/nope/preview", None).await.status,
        404
    );
    let empty = call(
        Method::POST,
        &format!("{base}/api/v1/rules/all/preview"),
        &[
            ("authorization", &bearer()),
            ("content-type", "application/json"),
        ],
        None,
    )
    .await;
    assert_eq!(empty.status, 200, "an empty body previews samples");
    let bad = post_api(&base, "/rules/all/preview", Some(json!(["x"]))).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].is_string());
    let unknown = get_api(&base, "/nothing-here").await;
    assert_eq!(unknown.status, 404);
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

/// The console's "Preview for a recent session": the sessions of the event log, newest first,
/// each once; a rule previewed for one of them carries that session as the store has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_previews_for_a_recent_session() {
    let (env, base) = served("127.0.0.1", true).await;
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    let none = get_api(&base, "/sessions").await;
    assert_eq!(none.status, 200, "{}", none.body);
    assert_eq!(none.json()["sessions"], json!([]));

    let mut older = session("s-older");
    older["title"] = json!("Bump the checkout SDK");
    env.api.upsert_all([older]);
    api_until(&base, "/sessions", |s| {
        s["sessions"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let mut newer = session("s-newer");
    newer["title"] = json!("Migrate billing to v2");
    newer["tags"] = json!(["team-billing"]);
    env.api.upsert_all([newer.clone()]);
    let listed = api_until(&base, "/sessions", |s| {
        s["sessions"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(listed["sessions"][0]["session_id"], "s-newer");
    assert_eq!(listed["sessions"][0]["title"], "Migrate billing to v2");
    assert_eq!(listed["sessions"][1]["session_id"], "s-older");
    // A change of the newer session: still listed once, newest first.
    newer["status_detail"] = json!("waiting_for_user");
    env.api.upsert_all([newer]);
    let changed = api_until(&base, "/sessions", |s| {
        s["sessions"][0]["last_event_type"] == "session.status_changed"
    })
    .await;
    assert_eq!(changed["sessions"].as_array().map(Vec::len), Some(2));

    // Every event type the rule routes, for that session as it is now.
    let preview = post_api(&base, "/rules/all/preview?session_id=s-newer", None).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let items = preview.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len(), 5, "{items:?}");
    for item in &items {
        let s = &item["payload"]["data"]["session"];
        assert_eq!(s["session_id"], "s-newer", "{item}");
        assert_eq!(s["title"], "Migrate billing to v2", "{item}");
        assert_eq!(s["tags"], json!(["team-billing"]), "{item}");
    }
    let one = post_api(
        &base,
        "/rules/all/preview?session_id=s-older&event=pull_request.opened",
        None,
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["items"][0]["event_type"], "pull_request.opened");
    assert_eq!(
        one.json()["items"][0]["payload"]["data"]["session"]["title"],
        "Bump the checkout SDK"
    );

    let unknown = post_api(&base, "/rules/all/preview?session_id=s-never", None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("s-never"), "{}", unknown.body);
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_shows_a_secret() {
    let (env, base) = served("127.0.0.1", true).await;
    env.api.upsert_all([session("s1")]);
    let service = Service::start(&env);
    service.wait_log("poll done", 1, WAIT).await;
    // A receiver that echoes its URL's secret query in its refusal.
    env.hook
        .set_default(Reply::Status(400, "bad: token=hooksecretquery".into()));
    env.api.update("s1", |s| s["status"] = json!("exit"));
    let list = api_until(&base, "/dead-letters", |v| v["dead_letters"][0].is_object()).await;
    let id = list["dead_letters"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sinks = get_api(&base, "/sinks").await.json();
    let host = env.hook.base_url().replace("http://", "");
    assert_eq!(sinks["sinks"][0]["host"], host.as_str());

    let signed = sign_in(&base, ADMIN, None).await;
    let pair = signed
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let mut answers = vec![signed.body.clone()];
    for path in ["/status", "/sinks", "/dead-letters", "/rules"] {
        answers.push(get_api(&base, path).await.body);
    }
    answers.push(get_api(&base, &format!("/dead-letters/{id}")).await.body);
    answers.push(post_api(&base, "/rules/all/preview", None).await.body);
    for path in ["/ui", "/ui/sign-in", "/ui/assets/console.js"] {
        let url = format!("{base}{path}");
        answers.push(
            call(Method::GET, &url, &[("cookie", &pair)], None)
                .await
                .body,
        );
    }
    let (code, out) = env.cli(&["dead-letters", "list"]).await;
    assert_eq!(code, Some(0), "{out}");
    answers.push(out);
    let (ok, log) = service.stop().await;
    assert!(ok, "{log}");
    assert!(!log.contains(ADMIN), "the admin token was logged:\n{log}");
    for (i, answer) in answers.iter().enumerate() {
        for secret in ["hooksecretquery", "slacksecretpath", SECRET, TOKEN, ADMIN] {
            assert!(
                !answer.contains(secret),
                "answer {i} shows {secret}:\n{answer}"
            );
        }
    }
    assert!(answers[3].contains("[redacted]"), "{}", answers[3]);
}
