//! What templates are given, and the bodies devin-notify builds itself: the template context,
//! headlines and colors, the default webhook body, CloudEvents, and Discord's limits.

use serde_json::{json, Value};

use crate::event::{human_duration, rfc3339, Change, Event, EventType};

/// The webhook body when no template is set (SPEC section 5). An account signal's body has no
/// `session` and `previous`, but the `subject` it is about (`queue`, `consumption/DATE`).
pub fn default_webhook_body(event: &Event) -> Value {
    if !event.kind.about_session() {
        return json!({
            "type": event.kind.as_str(),
            "timestamp": rfc3339(event.timestamp()),
            "data": {
                "event_id": event.id,
                "subject": event.subject(),
                "change": event.change,
            }
        });
    }
    let mut body = json!({
        "type": event.kind.as_str(),
        "timestamp": rfc3339(event.timestamp()),
        "data": {
            "event_id": event.id,
            "session": event.session,
            "previous": event.previous,
            "change": event.change,
        }
    });
    if let Some(message) = &event.last_devin_message {
        body["data"]["last_devin_message"] = json!(message);
    }
    body
}

/// The event as a CloudEvents 1.0 event in structured mode: `id` is the delivery's
/// `webhook-id`, `source` names the producer (`devin-notify`, plus `/` and the organization for
/// an organization-scoped account), `data` is what a webhook body's `data` holds.
pub fn cloud_event(event: &Event, id: &str, source: &str, data: Value) -> Value {
    cloud_envelope(
        id,
        source,
        event.kind.as_str(),
        &event.session.session_id,
        rfc3339(event.timestamp()),
        data,
    )
}

/// A CloudEvents 1.0 event in structured mode of type `ai.devin.<kind>` (events, held
/// summaries and digests alike).
pub fn cloud_envelope(
    id: &str,
    source: &str,
    kind: &str,
    subject: &str,
    time: String,
    data: Value,
) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": format!("ai.devin.{kind}"),
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// What in a Discord payload exceeds Discord's limits (content 2,000 characters; 10 embeds;
/// per embed: title 256, description 4,096, 25 fields, field name 256 and value 1,024, footer
/// 2,048; 6,000 characters across the embeds). Empty when within them. Source: Discord's
/// developer documentation, "Execute Webhook" (content) and "Embed Limits" (Channel resource).
pub fn discord_limits(payload: &Value) -> Vec<String> {
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut over = Vec::new();
    let check = |over: &mut Vec<String>, what: String, n: usize, max: usize| {
        if n > max {
            over.push(format!("{what} has {n} characters (Discord allows {max})"));
        }
    };
    check(
        &mut over,
        "content".into(),
        chars(&payload["content"]),
        2000,
    );
    let embeds = payload["embeds"].as_array().map_or(&[][..], Vec::as_slice);
    if embeds.len() > 10 {
        over.push(format!("{} embeds (Discord allows 10)", embeds.len()));
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        let fields = e["fields"].as_array().map_or(&[][..], Vec::as_slice);
        if fields.len() > 25 {
            over.push(format!(
                "embeds[{i}] has {} fields (Discord allows 25)",
                fields.len()
            ));
        }
        let sizes = [
            ("title", chars(&e["title"]), 256),
            ("description", chars(&e["description"]), 4096),
            ("footer.text", chars(&e["footer"]["text"]), 2048),
        ];
        for (name, n, max) in sizes {
            check(&mut over, format!("embeds[{i}].{name}"), n, max);
            total += n;
        }
        for (j, f) in fields.iter().enumerate() {
            check(
                &mut over,
                format!("embeds[{i}].fields[{j}].name"),
                chars(&f["name"]),
                256,
            );
            check(
                &mut over,
                format!("embeds[{i}].fields[{j}].value"),
                chars(&f["value"]),
                1024,
            );
            total += chars(&f["name"]) + chars(&f["value"]);
        }
    }
    check(&mut over, "the embeds together".into(), total, 6000);
    over
}

/// An embed color (RGB) for an event: green finished or merged, red failed, amber waiting,
/// blue otherwise.
pub fn color(event: &Event) -> u32 {
    match &event.change {
        Change::Status {
            status,
            status_detail,
            ..
        } => match (status.as_str(), status_detail.as_deref()) {
            (_, Some("waiting_for_user" | "waiting_for_approval")) => 0xF5A623,
            (_, Some("finished")) | ("exit", _) => 0x2EB67D,
            ("error", _) => 0xE01E5A,
            _ => 0x5865F2,
        },
        Change::PullRequest { pr_state, .. } if pr_state == "merged" => 0x2EB67D,
        Change::Waiting { .. } | Change::Acus { .. } => 0xF5A623,
        Change::Queue { status, .. } => match status.as_str() {
            "normal" => 0x2EB67D,
            "high" => 0xE01E5A,
            _ => 0xF5A623,
        },
        Change::Consumption { .. } => 0xE01E5A,
        _ => 0x5865F2,
    }
}

/// A one-line summary and an emoji for an event, shared by the default templates.
pub fn headline(event: &Event) -> (&'static str, String) {
    match &event.change {
        Change::Status {
            status,
            status_detail,
            ..
        } => match (status.as_str(), status_detail.as_deref()) {
            (_, Some("waiting_for_user")) => (":raising_hand:", "Devin needs your input".into()),
            (_, Some("waiting_for_approval")) => (
                ":raising_hand:",
                "Devin is waiting for your approval".into(),
            ),
            (_, Some("finished")) | ("exit", _) => (":white_check_mark:", "Devin finished".into()),
            ("error", _) => (":x:", "Devin hit an error".into()),
            ("suspended", Some(d)) => (
                ":double_vertical_bar:",
                format!("Session suspended ({})", d.replace('_', " ")),
            ),
            ("suspended", None) => (":double_vertical_bar:", "Session suspended".into()),
            ("running", Some("working")) => (":arrow_forward:", "Devin is working".into()),
            (s, Some(d)) => (":information_source:", format!("Status is now {s} ({d})")),
            (s, None) => (":information_source:", format!("Status is now {s}")),
        },
        Change::PullRequest {
            pr_state,
            from_pr_state: None,
            ..
        } => (
            ":twisted_rightwards_arrows:",
            format!("Devin opened a pull request ({pr_state})"),
        ),
        Change::PullRequest { pr_state, .. } => match pr_state.as_str() {
            "merged" => (":tada:", "Pull request merged".into()),
            "closed" => (":no_entry_sign:", "Pull request closed".into()),
            s => (
                ":twisted_rightwards_arrows:",
                format!("Pull request is now {s}"),
            ),
        },
        Change::Waiting {
            waiting_seconds, ..
        } => (
            ":hourglass_flowing_sand:",
            format!(
                "Devin has been waiting for you for {}",
                human_duration(*waiting_seconds)
            ),
        ),
        Change::Acus { threshold, .. } => (
            ":money_with_wings:",
            format!("Session passed {threshold} ACUs"),
        ),
        Change::Queue {
            from_status,
            status,
            ..
        } => match status.as_str() {
            "normal" => (
                ":large_green_circle:",
                format!("Devin's queue is back to normal (was {from_status})"),
            ),
            "high" => (":rotating_light:", "Devin's queue is high".into()),
            s => (
                ":warning:",
                format!("Devin's queue is {s} (was {from_status})"),
            ),
        },
        Change::Consumption {
            date, threshold, ..
        } => (
            ":money_with_wings:",
            format!("Daily ACU spend passed {threshold} on {date}"),
        ),
        Change::Session {} if event.kind == EventType::SessionArchived => {
            (":file_cabinet:", "Session archived".into())
        }
        Change::Session {} => (":sparkles:", "New Devin session".into()),
    }
}

/// The data a template sees.
///
/// `event` (`id`, `type`, `timestamp`), `session` and `previous` (as the API lists them),
/// `change` (the fields that changed), `title` (the title, or the session id), `headline` and
/// `emoji` (a summary line), `acus` (ACUs to one decimal), `repo` (of the event's PR),
/// `rule` and `sink` (names).
pub fn context(event: &Event, rule: &str, sink: &str) -> Value {
    if !event.kind.about_session() {
        return account_context(event, rule, sink);
    }
    let (emoji, headline) = headline(event);
    let repo = match &event.change {
        Change::PullRequest { repo, .. } => repo.clone(),
        _ => None,
    };
    json!({
        "event": {
            "id": event.id,
            "type": event.kind.as_str(),
            "timestamp": rfc3339(event.timestamp()),
        },
        "session": event.session,
        "previous": event.previous,
        "change": event.change,
        "title": event.session.display_title(),
        "headline": headline,
        "emoji": emoji,
        "acus": format!("{:.1}", event.session.acus_consumed),
        "repo": repo,
        "last_devin_message": event.last_devin_message,
        "color": color(event),
        "waited": match &event.change {
            Change::Waiting { waiting_seconds, .. } => human_duration(*waiting_seconds),
            _ => String::new(),
        },
        "rule": rule,
        "sink": sink,
    })
}

/// Where an account signal's messages link: Devin's web app.
pub const DEVIN_APP_URL: &str = "https://app.devin.ai";

/// The data a template sees for an account signal (no session): `event`, `change`, `subject`,
/// `title` (`Devin queue`, `Devin ACU spend`), `headline`, `emoji`, `color`, `url` (Devin's web
/// app), `acus` (the day's ACUs to one decimal, for consumption), `rule` and `sink`; and, so
/// that a session template given to a rule of both kinds still renders, `session` with only
/// `session_id` (the subject) and `url` (Devin's web app).
fn account_context(event: &Event, rule: &str, sink: &str) -> Value {
    let (emoji, headline) = headline(event);
    let (title, acus) = match &event.change {
        Change::Consumption { acus, .. } => ("Devin ACU spend", format!("{acus:.1}")),
        _ => ("Devin queue", String::new()),
    };
    json!({
        "event": {
            "id": event.id,
            "type": event.kind.as_str(),
            "timestamp": rfc3339(event.timestamp()),
        },
        "subject": event.subject(),
        "session": { "session_id": event.subject(), "url": DEVIN_APP_URL },
        "change": event.change,
        "title": title,
        "headline": headline,
        "emoji": emoji,
        "acus": acus,
        "color": color(event),
        "url": DEVIN_APP_URL,
        "rule": rule,
        "sink": sink,
    })
}

/// The largest Teams message body, in bytes (a Workflows webhook takes about 28 KB).
pub const TEAMS_MAX_BYTES: usize = 28 * 1024;

/// An Adaptive Card in the message envelope a Teams Workflows webhook takes.
pub fn teams_message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// What in a Slack message exceeds Slack's limits (50 blocks; a section's text 3,000
/// characters). Empty when within them.
pub fn slack_limits(payload: &Value) -> Vec<String> {
    let blocks = payload["blocks"].as_array().map_or(&[][..], Vec::as_slice);
    let mut over = Vec::new();
    if blocks.len() > 50 {
        over.push(format!("{} blocks (Slack allows 50)", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        let n = block["text"]["text"]
            .as_str()
            .map_or(0, |s| s.chars().count());
        if block["type"] == "section" && n > 3000 {
            over.push(format!(
                "blocks[{i}] (a section) has {n} characters of text (Slack allows 3000)"
            ));
        }
    }
    over
}
