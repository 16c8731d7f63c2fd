//! `demo`: a self-contained run with no credentials and no network beyond 127.0.0.1.
//!
//! An in-process simulated Devin API serves sessions that live realistic lives (created,
//! working, waiting for the user, back to work, a PR opened then merged, finished; one errors,
//! one is suspended and resumes). The real service polls it, diffs, matches rules, renders the
//! default templates and delivers through the outbox to local sinks that print each message as
//! it would read where it lands: a Slack channel, a Microsoft Teams channel (the Adaptive Card,
//! answered with Workflows' 202), a Discord channel (the embed, answered as `?wait=true` is),
//! and a signed webhook receiver that verifies each signature. The account's queue fills up and
//! drains (a `queue.status_changed` alert in Slack), and the person who started a session gets
//! a direct message from a Slack app when Devin needs them (`to = "creator"`, through a local
//! Slack Web API that prints the DM).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::active::Active;
use crate::app::{self, AppError};
use crate::config::Config;
use crate::model::{PullRequest, Session};

const TOKEN: &str = "cog_demo_token";
const SECRET: &str = "whsec_ZGV2aW4tbm90aWZ5LWRlbW8tc2lnbmluZy1rZXk=";

/// One step of the simulation.
#[derive(Debug, Clone, Copy)]
enum Act {
    Create(usize, &'static str, &'static [&'static str], &'static str),
    Status(usize, &'static str, Option<&'static str>),
    Pr(usize, &'static str, &'static str),
    Archive(usize),
    /// The account's queue: its size and status.
    Queue(u64, &'static str),
}

const SCRIPT: &[Act] = &[
    Act::Create(
        0,
        "Fix the flaky checkout test",
        &["team-payments"],
        "slack",
    ),
    Act::Create(
        1,
        "Upgrade the web app to React 19",
        &["frontend"],
        "webapp",
    ),
    Act::Pr(0, "https://github.com/acme/checkout/pull/412", "open"),
    Act::Status(1, "running", Some("waiting_for_user")),
    Act::Create(
        2,
        "Investigate 500s in the billing API",
        &["team-payments", "oncall"],
        "api",
    ),
    Act::Queue(14, "high"),
    Act::Status(1, "running", Some("working")),
    Act::Pr(0, "https://github.com/acme/checkout/pull/412", "merged"),
    Act::Status(0, "exit", None),
    Act::Status(2, "error", None),
    Act::Pr(1, "https://github.com/acme/web/pull/88", "open"),
    Act::Create(3, "Nightly dependency bump", &["automation"], "scheduled"),
    Act::Status(1, "running", Some("waiting_for_approval")),
    Act::Status(3, "suspended", Some("inactivity")),
    Act::Status(1, "running", Some("finished")),
    Act::Pr(1, "https://github.com/acme/web/pull/88", "merged"),
    Act::Status(3, "resuming", None),
    Act::Status(1, "exit", None),
    Act::Status(3, "running", Some("working")),
    Act::Queue(1, "normal"),
    Act::Archive(0),
    Act::Status(3, "exit", None),
];

/// The simulated account.
#[derive(Default)]
struct World {
    sessions: Vec<Session>,
    clock: i64,
    generation: usize,
    step: usize,
    /// The queue: (size, status).
    queue: (u64, &'static str),
}

impl World {
    fn id(&self, n: usize) -> String {
        format!("devin-demo{}{n:02}", self.generation)
    }

    fn apply(&mut self, act: Act) {
        self.clock += 7;
        let now = self.clock;
        match act {
            Act::Queue(size, status) => self.queue = (size, status),
            Act::Create(n, title, tags, origin) => {
                let mut s = Session::new(self.id(n), "running");
                s.status_detail = Some("working".into());
                s.title = Some(title.into());
                s.url = format!("https://app.devin.ai/sessions/{}", s.session_id);
                s.tags = tags.iter().map(|t| (*t).to_owned()).collect();
                s.origin = Some(origin.into());
                s.org_id = "org-demo".into();
                s.user_id = Some("user-ana".into());
                s.created_at = now;
                s.updated_at = now;
                s.acus_consumed = 0.5;
                self.sessions.push(s);
            }
            Act::Status(n, status, detail) => {
                if let Some(s) = self.touch(n, now) {
                    s.status = status.into();
                    s.status_detail = detail.map(str::to_owned);
                }
            }
            Act::Pr(n, url, state) => {
                if let Some(s) = self.touch(n, now) {
                    match s.pull_requests.iter_mut().find(|p| p.pr_url == url) {
                        Some(p) => p.pr_state = state.into(),
                        None => s.pull_requests.push(PullRequest {
                            pr_url: url.into(),
                            pr_state: state.into(),
                        }),
                    }
                }
            }
            Act::Archive(n) => {
                if let Some(s) = self.touch(n, now) {
                    s.is_archived = Some(true);
                }
            }
        }
    }

    /// Session `n` of this generation, updated at `now` and a little further along.
    fn touch(&mut self, n: usize, now: i64) -> Option<&mut Session> {
        let id = self.id(n);
        let s = self.sessions.iter_mut().find(|s| s.session_id == id)?;
        s.updated_at = now;
        s.acus_consumed += 1.25;
        Some(s)
    }

    /// Advances one step; after the last, a new generation of sessions starts.
    fn tick(&mut self) {
        if self.step == SCRIPT.len() {
            self.step = 0;
            self.generation += 1;
        }
        let act = SCRIPT[self.step];
        self.step += 1;
        self.apply(act);
    }
}

type Shared = Arc<Mutex<World>>;

/// `GET /v3/enterprise/sessions`: newest first, `first` per page, an offset cursor.
async fn list(
    State(world): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let mut first = 100usize;
    let mut after = 0usize;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("first", v)) => first = v.parse().unwrap_or(100).clamp(1, 200),
            Some(("after", v)) => after = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let world = world.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<&Session> = world.sessions.iter().collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let end = (after + first).min(all.len());
    let items: Vec<&Session> = all.get(after..end).unwrap_or_default().to_vec();
    let has_next_page = end < all.len();
    Json(json!({
        "items": items,
        "end_cursor": has_next_page.then(|| end.to_string()),
        "has_next_page": has_next_page,
        "total": all.len(),
    }))
    .into_response()
}

/// `GET /v3/enterprise/queue`: the simulated queue.
async fn queue(State(world): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let world = world.lock().unwrap_or_else(|e| e.into_inner());
    let (size, status) = world.queue;
    Json(json!({"queue_size": size, "status": if status.is_empty() { "normal" } else { status }}))
        .into_response()
}

/// A 401 unless the request carries the demo's token.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    (auth != Some(&format!("Bearer {TOKEN}"))).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "bad token"})),
        )
            .into_response()
    })
}

/// `GET /v3/enterprise/sessions/{id}/messages`: what Devin last asked a session's user.
async fn messages(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let world = world.lock().unwrap_or_else(|e| e.into_inner());
    let Some(session) = world.sessions.iter().find(|s| s.session_id == id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"detail": "no such session"})),
        )
            .into_response();
    };
    let question = match session.status_detail.as_deref() {
        Some("waiting_for_approval") => {
            "The upgrade touches 41 files. May I open the pull request?"
        }
        _ => "Should I upgrade react-router too, or keep it at v6 for now?",
    };
    Json(json!({
        "items": [
            {"event_id": "ev-1", "created_at": session.created_at, "source": "user", "message": "Please take this one."},
            {"event_id": "ev-2", "created_at": session.updated_at, "source": "devin", "message": question},
        ],
        "end_cursor": null,
        "has_next_page": false,
    }))
    .into_response()
}

/// Turns Slack mrkdwn into terminal text.
pub fn mrkdwn_to_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        out.push_str(&rest[..start]);
        let link = &rest[start + 1..start + end];
        out.push_str(link.split_once('|').map_or(link, |(_, label)| label));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let mut text = out
        .replace(['*', '`', '\u{200B}'], "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    for (code, glyph) in [
        (":raising_hand:", "✋"),
        (":white_check_mark:", "✅"),
        (":x:", "❌"),
        (":double_vertical_bar:", "⏸"),
        (":arrow_forward:", "▶"),
        (":information_source:", "ℹ"),
        (":twisted_rightwards_arrows:", "🔀"),
        (":tada:", "🎉"),
        (":no_entry_sign:", "🚫"),
        (":file_cabinet:", "🗄"),
        (":sparkles:", "✨"),
        (":rotating_light:", "🚨"),
        (":large_green_circle:", "🟢"),
        (":warning:", "⚠"),
        (":money_with_wings:", "💸"),
    ] {
        text = text.replace(code, glyph);
    }
    text
}

fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The Slack-shaped sink: prints the message as the channel would show it.
async fn slack(Json(message): Json<Value>) -> &'static str {
    let mut lines: Vec<String> = Vec::new();
    for block in message["blocks"].as_array().into_iter().flatten() {
        let texts = std::iter::once(&block["text"]["text"]).chain(
            block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| &e["text"]),
        );
        for text in texts.filter_map(Value::as_str) {
            lines.extend(mrkdwn_to_text(text).lines().map(str::to_owned));
        }
    }
    if lines.is_empty() {
        lines.push(mrkdwn_to_text(message["text"].as_str().unwrap_or_default()));
    }
    print_block("#devin (slack)", &lines);
    "ok"
}

/// The Teams-shaped sink (a Workflows URL): prints the Adaptive Card as the channel would show
/// it, and answers 202 with no body, as Workflows does.
async fn teams(Json(message): Json<Value>) -> StatusCode {
    print_block(
        "Teams card    ",
        &card_to_text(&message["attachments"][0]["content"]),
    );
    StatusCode::ACCEPTED
}

/// The Discord-shaped sink (a channel webhook with `?wait=true`): prints the embed as the
/// channel would show it, and answers with the created message, as Discord does.
async fn discord(Json(message): Json<Value>) -> Json<Value> {
    print_block("Discord       ", &embed_to_text(&message["embeds"][0]));
    Json(json!({
        "id": "1",
        "type": 0,
        "channel_id": "1",
        "content": message["content"].as_str().unwrap_or_default(),
        "embeds": message["embeds"].clone(),
    }))
}

/// The Slack Web API of the demo's Slack app: `users.lookupByEmail` knows Ana.
async fn slack_lookup(RawQuery(query): RawQuery) -> Json<Value> {
    let known = query
        .unwrap_or_default()
        .contains("email=ana%40example.com");
    Json(match known {
        true => json!({"ok": true, "user": {"id": "U0ANA"}}),
        false => json!({"ok": false, "error": "users_not_found"}),
    })
}

/// `chat.postMessage` of the demo's Slack app: prints the direct message as Ana reads it.
async fn slack_post(Json(message): Json<Value>) -> Json<Value> {
    let to = message["channel"].as_str().unwrap_or_default().to_owned();
    let mut lines: Vec<String> = message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"]["text"].as_str())
        .flat_map(|t| {
            mrkdwn_to_text(t)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    if lines.is_empty() {
        lines.push(mrkdwn_to_text(message["text"].as_str().unwrap_or_default()));
    }
    let place = if to == "U0ANA" {
        "DM to @ana    "
    } else {
        "Slack app     "
    };
    print_block(place, &lines);
    Json(
        json!({"ok": true, "channel": "D0ANA", "ts": format!("{}.000100", clock().replace(':', ""))}),
    )
}

/// Prints one message: the time and where it landed, then its lines, indented.
fn print_block(place: &str, lines: &[String]) {
    let head = format!("[{}] {place}  ", clock());
    let mut out = format!(
        "{head}{}\n",
        lines.first().map(String::as_str).unwrap_or_default()
    );
    let indent = head.chars().count();
    for line in lines.iter().skip(1) {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    print!("{out}");
}

/// An Adaptive Card as terminal text: each visible TextBlock (a link shows its label), the
/// facts on one line, the actions as buttons.
pub fn card_to_text(card: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for item in card["body"].as_array().into_iter().flatten() {
        if item["isVisible"] == Value::Bool(false) {
            continue;
        }
        match item["type"].as_str() {
            Some("TextBlock") => {
                let text = card_markdown_to_text(item["text"].as_str().unwrap_or_default());
                lines.extend(text.lines().map(str::to_owned));
            }
            Some("FactSet") => {
                let facts: Vec<String> = item["facts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let text =
                            |k: &str| card_markdown_to_text(f[k].as_str().unwrap_or_default());
                        format!("{}: {}", text("title"), text("value"))
                    })
                    .collect();
                lines.push(facts.join(" · "));
            }
            _ => {}
        }
    }
    let buttons: Vec<String> = card["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["title"].as_str())
        .map(|t| format!("[ {t} ]"))
        .collect();
    if !buttons.is_empty() {
        lines.push(buttons.join(" "));
    }
    lines
}

/// Adaptive Card markdown as terminal text: a whole-text link `[label](url)` shows its label,
/// and the zero-width spaces that defuse values go.
fn card_markdown_to_text(text: &str) -> String {
    let label = match (text.strip_prefix('['), text.rfind("](")) {
        (Some(_), Some(end)) if text.ends_with(')') => &text[1..end],
        _ => text,
    };
    label.replace('\u{200B}', "")
}

/// A Discord embed as terminal text: the title, the description, the fields on one line.
pub fn embed_to_text(embed: &Value) -> Vec<String> {
    let text = |v: &Value| discord_markdown_to_text(v.as_str().unwrap_or_default());
    let mut lines = vec![text(&embed["title"])];
    lines.extend(text(&embed["description"]).lines().map(str::to_owned));
    let fields: Vec<String> = embed["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("{}: {}", text(&f["name"]), text(&f["value"])))
        .collect();
    if !fields.is_empty() {
        lines.push(fields.join(" · "));
    }
    lines
}

/// Discord markdown as terminal text: bold markers go, and a backslash-escaped character
/// shows as itself.
fn discord_markdown_to_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text
        .replace("**", "")
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The webhook sink: verifies the Standard Webhooks signature and prints one line.
async fn webhook(headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let verified = crate::signing::signing_key(&crate::secret::Secret::new(SECRET))
        .ok()
        .zip(timestamp.parse::<i64>().ok())
        .is_some_and(|(key, ts)| crate::signing::sign(&key, &id, ts, body.as_bytes()) == signature);
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    println!(
        "[{}] webhook  {:26} {}  webhook-id {}  signature {}",
        clock(),
        value["type"].as_str().unwrap_or("?"),
        value["data"]["session"]["session_id"]
            .as_str()
            .unwrap_or("?"),
        id,
        if verified { "verified" } else { "INVALID" }
    );
    if verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn serve(router: Router) -> Result<SocketAddr, AppError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| AppError::Setup(format!("demo: cannot listen on 127.0.0.1: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::Setup(format!("demo: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "demo server stopped");
        }
    });
    Ok(addr)
}

/// The demo's configuration, pointing at the local simulated API and sinks.
pub fn config_text(
    api: SocketAddr,
    sinks: SocketAddr,
    store: &std::path::Path,
    poll: Duration,
) -> String {
    format!(
        r#"
[devin]
base_url = "http://{api}"
token = "{TOKEN}"
poll_interval = "{poll}ms"
page_size = 2
[store]
path = "{store}"
[delivery]
initial_backoff = "1s"
max_backoff = "10s"
[log]
level = "warn"
[sinks.slack]
type = "slack"
url = "http://{sinks}/slack"
max_per_second = 50
[sinks.teams]
type = "teams"
url = "http://{sinks}/teams"
max_per_second = 50
[sinks.discord]
type = "discord"
url = "http://{sinks}/discord"
max_per_second = 50
[sinks.automation]
type = "webhook"
url = "http://{sinks}/webhook"
secret = "{SECRET}"
{beyond}
[[rules]]
name = "needs-input"
events = ["session.status_changed"]
sinks = ["slack", "teams"]
template = "needs_input"
[rules.when]
status_detail = ["waiting_for_user", "waiting_for_approval"]
[[rules]]
name = "other-status-changes"
events = ["session.status_changed"]
sinks = ["slack"]
[rules.when]
status = ["exit", "error", "suspended", "resuming"]
[[rules]]
name = "new-and-archived"
events = ["session.created", "session.archived"]
sinks = ["slack"]
[[rules]]
name = "prs"
events = ["pull_request.opened", "pull_request.state_changed"]
sinks = ["slack", "discord"]
[[rules]]
name = "automation"
events = ["session.created", "session.status_changed", "session.archived", "pull_request.opened", "pull_request.state_changed"]
sinks = ["automation"]
"#,
        store = store.display().to_string().replace('\\', "\\\\"),
        poll = poll.as_millis(),
        beyond = beyond_text(sinks, poll),
    )
}

/// The demo's sections beyond sessions: the queue, a Slack app that DMs the session's creator
/// (Ana, known from `[people]`), and their rules.
fn beyond_text(sinks: SocketAddr, poll: Duration) -> String {
    format!(
        r#"
[sinks.dm]
type = "slack_app"
token = "xoxb-demo"
to = "creator"
api_base = "http://{sinks}/slack-api"
max_per_second = 50
[devin.queue]
every = "{poll}ms"
[people]
"user-ana" = "ana@example.com"
[[rules]]
name = "dm-the-creator"
events = ["session.status_changed"]
sinks = ["dm"]
template = "needs_input"
[rules.when]
status_detail = ["waiting_for_user", "waiting_for_approval"]
[[rules]]
name = "queue"
events = ["queue.status_changed"]
sinks = ["slack"]
"#,
        poll = poll.as_millis(),
    )
}

/// Runs the demo until `stop` resolves (Ctrl-C, or `--for`).
pub async fn run(
    tick: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AppError> {
    let world: Shared = Arc::new(Mutex::new(World {
        clock: 1_764_000_000,
        ..World::default()
    }));
    let api = serve(
        Router::new()
            .route("/v3/enterprise/sessions", get(list))
            .route("/v3/enterprise/sessions/{id}/messages", get(messages))
            .route("/v3/enterprise/queue", get(queue))
            .with_state(world.clone()),
    )
    .await?;
    let sinks = serve(
        Router::new()
            .route("/slack", post(slack))
            .route("/teams", post(teams))
            .route("/discord", post(discord))
            .route("/webhook", post(webhook))
            .route("/slack-api/users.lookupByEmail", get(slack_lookup))
            .route("/slack-api/chat.postMessage", post(slack_post)),
    )
    .await?;
    let store = std::env::temp_dir().join(format!("devin-notify-demo-{}", std::process::id()));
    // Poll three times per change, so the demo shows every state (polling sees states, not
    // transitions: a state shorter than the poll interval can be missed).
    let poll = (tick / 3).max(Duration::from_millis(100));
    let config = Config::from_toml(&config_text(api, sinks, &store, poll), |_| None)?;
    app::init_logging(&config.log);
    let active = Active::from_config(config).map_err(|problems| {
        AppError::Setup(format!(
            "demo config: {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    println!("devin-notify demo: a simulated Devin API on http://{api}, sinks on http://{sinks}");
    println!("Sessions change every {tick:?}; the service polls every {poll:?}. Ctrl-C stops.\n");
    let simulation = tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            world.lock().unwrap_or_else(|e| e.into_inner()).tick();
        }
    });
    let result = crate::service::run(active, None, stop).await;
    simulation.abort();
    let _ = std::fs::remove_dir_all(&store);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_reads_as_text() {
        assert_eq!(
            mrkdwn_to_text(":raising_hand: *Devin needs your input* on <https://x/y?a=1&amp;b=2|A &lt;b&gt; &amp; c>"),
            "✋ Devin needs your input on A <b> & c"
        );
        assert_eq!(
            mrkdwn_to_text("`running` → `exit` <broken"),
            "running → exit <broken"
        );
    }

    #[test]
    fn cards_and_embeds_read_as_text() {
        let z = '\u{200B}';
        let card = json!({"body": [
            {"type": "TextBlock", "text": "Devin hit an error"},
            {"type": "TextBlock", "text": format!("[Ship [{z}it]{z} *{z}*{z}now](https://x/s1)")},
            {"type": "TextBlock", "text": " ", "isVisible": false},
            {"type": "FactSet", "facts": [{"title": "Status", "value": "error"}, {"title": "ACUs", "value": "2"}]}
        ], "actions": [{"type": "Action.OpenUrl", "title": "Open session", "url": "https://x/s1"}]});
        assert_eq!(
            card_to_text(&card),
            [
                "Devin hit an error",
                "Ship [it] **now",
                "Status: error · ACUs: 2",
                "[ Open session ]"
            ]
        );
        let embed = json!({"title": "\\@everyone \\[x\\]", "description": "**Merged**\nhttps\\://x", "fields": [{"name": "ACUs", "value": "3"}]});
        assert_eq!(
            embed_to_text(&embed),
            ["@everyone [x]", "Merged", "https://x", "ACUs: 3"]
        );
    }

    #[test]
    fn the_script_is_consistent() {
        let mut w = World::default();
        for _ in 0..SCRIPT.len() * 2 {
            w.tick();
        }
        assert_eq!(w.sessions.len(), 8, "two generations of four sessions");
        assert!(w
            .sessions
            .iter()
            .all(|s| s.status == "exit" || s.status == "error"));
    }
}
