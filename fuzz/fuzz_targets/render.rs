//! Arbitrary session values through every built-in template (and the default webhook body),
//! for every event type. Rendering must never fail or panic, every payload must be valid JSON,
//! and no `<` or `>` from a session value may reach Slack mrkdwn raw (where it would make a
//! link or a mention).

#![no_main]

use arbitrary::Arbitrary;
use devin_notify::model::{repo_of, PullRequest, Session};
use devin_notify::event::{stable_id, Change, Event, EventType};
use devin_notify::render::{Templates, BUILT_IN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug, Clone)]
struct Input {
    session_id: String,
    status: String,
    status_detail: Option<String>,
    title: Option<String>,
    url: String,
    org_id: String,
    tags: Vec<String>,
    acus: f64,
    created_at: i64,
    updated_at: i64,
    archived: Option<bool>,
    origin: Option<String>,
    category: Option<String>,
    user_id: Option<String>,
    prs: Vec<(String, String)>,
    extra: Vec<(String, String)>,
    previous_status: String,
    previous_detail: Option<String>,
    previous_pr_state: String,
    rule: String,
    sink: String,
}

impl Input {
    /// Every string with `<` and `>` replaced by `(` and `)`: same lengths and emptiness, so the
    /// same template branches, but nothing that could turn into mrkdwn.
    fn defanged(&self) -> Input {
        let d = |s: &String| s.replace('<', "(").replace('>', ")");
        let o = |s: &Option<String>| s.as_ref().map(d);
        Input {
            session_id: d(&self.session_id),
            status: d(&self.status),
            status_detail: o(&self.status_detail),
            title: o(&self.title),
            url: d(&self.url),
            org_id: d(&self.org_id),
            tags: self.tags.iter().map(d).collect(),
            acus: self.acus,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived: self.archived,
            origin: o(&self.origin),
            category: o(&self.category),
            user_id: o(&self.user_id),
            prs: self.prs.iter().map(|(u, s)| (d(u), d(s))).collect(),
            extra: self.extra.iter().map(|(k, v)| (d(k), d(v))).collect(),
            previous_status: d(&self.previous_status),
            previous_detail: o(&self.previous_detail),
            previous_pr_state: d(&self.previous_pr_state),
            rule: d(&self.rule),
            sink: d(&self.sink),
        }
    }

    fn session(&self) -> Session {
        let mut s = Session::new(self.session_id.clone(), self.status.clone());
        s.status_detail = self.status_detail.clone();
        s.title = self.title.clone();
        s.url = self.url.clone();
        s.org_id = self.org_id.clone();
        s.tags = self.tags.clone();
        s.acus_consumed = self.acus;
        s.created_at = self.created_at;
        s.updated_at = self.updated_at;
        s.is_archived = self.archived;
        s.origin = self.origin.clone();
        s.category = self.category.clone();
        s.user_id = self.user_id.clone();
        s.pull_requests = self
            .prs
            .iter()
            .map(|(pr_url, pr_state)| PullRequest {
                pr_url: pr_url.clone(),
                pr_state: pr_state.clone(),
            })
            .collect();
        for (k, v) in &self.extra {
            // Unknown fields only: a known name would be a duplicate key in the JSON.
            s.extra.insert(format!("x_{k}"), Value::String(v.clone()));
        }
        s
    }

    /// One event of every type, from these values.
    fn events(&self) -> Vec<Event> {
        let session = self.session();
        let mut previous = session.clone();
        previous.status = self.previous_status.clone();
        previous.status_detail = self.previous_detail.clone();
        previous.is_archived = Some(false);
        let (pr_url, pr_state) = self.prs.first().cloned().unwrap_or_default();
        let pr = |from: Option<String>| Change::PullRequest {
            repo: repo_of(&pr_url),
            pr_url: pr_url.clone(),
            pr_state: pr_state.clone(),
            from_pr_state: from,
        };
        let status = Change::Status {
            from_status: previous.status.clone(),
            status: session.status.clone(),
            from_status_detail: previous.status_detail.clone(),
            status_detail: session.status_detail.clone(),
        };
        [
            (EventType::SessionCreated, Change::Session {}, None),
            (EventType::SessionStatusChanged, status, Some(&previous)),
            (
                EventType::SessionArchived,
                Change::Session {},
                Some(&previous),
            ),
            (EventType::PullRequestOpened, pr(None), Some(&previous)),
            (
                EventType::PullRequestStateChanged,
                pr(Some(self.previous_pr_state.clone())),
                Some(&previous),
            ),
            (
                EventType::SessionWaiting,
                Change::Waiting {
                    status_detail: session.status_detail.clone(),
                    waiting_since: devin_notify::event::rfc3339(session.updated_at),
                    waiting_seconds: session.acus_consumed.abs() as u64,
                    reminder: 2,
                    rule: self.previous_pr_state.clone(),
                },
                None,
            ),
            (
                EventType::SessionAcusExceeded,
                Change::Acus {
                    threshold: 50.0,
                    acus_consumed: session.acus_consumed,
                    from_acus: 0.0,
                },
                Some(&previous),
            ),
        ]
        .into_iter()
        .map(|(kind, change, previous)| Event {
            id: stable_id("evt_", &[&session.session_id, kind.as_str()]),
            kind,
            session: session.clone(),
            previous: previous.cloned(),
            change,
            // Devin's quoted question: arbitrary text too (the title's).
            last_devin_message: session.title.clone(),
        })
        .collect()
    }
}

/// Every (sink type, template) pair to render: each built-in event template (digest templates
/// take a digest, not an event), and the webhook default body (`None`).
fn targets() -> Vec<(&'static str, Option<&'static str>)> {
    let mut t: Vec<_> = BUILT_IN
        .iter()
        .filter_map(|(name, _)| name.split_once('/'))
        .filter(|(_, name)| *name != "digest")
        .map(|(kind, name)| (kind, Some(name)))
        .collect();
    t.push(("webhook", None));
    t
}

/// The strings Slack reads as mrkdwn: the `text` fallback and every `{"type": "mrkdwn"}` text.
fn mrkdwn(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let is_mrkdwn = map.get("type").and_then(Value::as_str) == Some("mrkdwn");
            for (k, v) in map {
                match v {
                    Value::String(s) if k == "text" && is_mrkdwn => out.push(s.clone()),
                    v => mrkdwn(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| mrkdwn(v, out)),
        _ => {}
    }
}

fn render_all(templates: &Templates, input: &Input) -> Vec<(String, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for event in input.events() {
        for (kind, template) in targets() {
            let body = templates
                .render(kind, template, &event, &input.rule, &input.sink)
                .unwrap_or_else(|e| panic!("{kind}/{template:?} for {}: {e}", event.kind));
            let value: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{kind}/{template:?} rendered invalid JSON: {e}"));
            let slack = (kind == "slack").then(|| {
                let mut texts = Vec::new();
                if let Some(Value::String(t)) = value.get("text") {
                    texts.push(t.clone());
                }
                mrkdwn(&value, &mut texts);
                texts
            });
            out.push((format!("{kind}/{template:?} {}", event.kind), slack));
        }
    }
    out
}

fuzz_target!(|input: Input| {
    thread_local! {
        static TEMPLATES: Templates = Templates::built_in();
    }
    TEMPLATES.with(|templates| {
        let raw = render_all(templates, &input);
        // Without `<` or `>` in the input there is nothing to compare against.
        let debug = format!("{input:?}");
        if !debug.contains('<') && !debug.contains('>') {
            return;
        }
        let safe = render_all(templates, &input.defanged());
        for ((what, texts), (_, safe_texts)) in raw.iter().zip(&safe) {
            let (Some(texts), Some(safe_texts)) = (texts, safe_texts) else {
                continue;
            };
            for (text, safe_text) in texts.iter().zip(safe_texts) {
                for c in ['<', '>'] {
                    assert_eq!(
                        text.matches(c).count(),
                        safe_text.matches(c).count(),
                        "a raw `{c}` from the input reached Slack mrkdwn in {what}: {text:?}"
                    );
                }
            }
        }
    });
});
