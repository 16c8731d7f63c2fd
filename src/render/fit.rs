//! Cutting a rendered payload to its destination's limits at send time, so that a receiver
//! never refuses it for its size: `check` and `preview` report a template whose output is over
//! them (see [`super::slack_limits`], [`super::discord_limits`], [`super::TEAMS_MAX_BYTES`]);
//! what still goes over at send time (a longer title or message than the samples) is cut here.
//!
//! Structure first (blocks, embeds, fields beyond the count allowed are dropped from the end),
//! then text: every text over its own limit is cut to it, and when a total is over (Discord's
//! 6,000 characters, a Teams card's bytes) the longest text is cut first, so the session's title
//! and Devin's quoted message give way before the short lines around them. A cut ends with `…`,
//! on a character boundary, and never inside a Slack link or mention (`<...>`).

use serde_json::Value;

use super::payload::TEAMS_MAX_BYTES;
use crate::event::truncate_chars;

/// The most blocks in a Slack message, and characters in a section's text.
const SLACK_BLOCKS: usize = 50;
const SLACK_SECTION: usize = 3000;

/// Cuts `payload`, rendered for a sink of `kind` (`slack`, `discord`, `teams`; others are left
/// as they are), until it is within the destination's limits. Returns what was cut (empty when
/// nothing was).
pub fn fit(kind: &str, payload: &mut Value) -> Vec<String> {
    let mut cut = Vec::new();
    match kind {
        "slack" => fit_slack(payload, &mut cut),
        "discord" => fit_discord(payload, &mut cut),
        "teams" => fit_teams(payload, &mut cut),
        _ => {}
    }
    cut
}

fn fit_slack(payload: &mut Value, cut: &mut Vec<String>) {
    let Some(blocks) = payload.get_mut("blocks").and_then(Value::as_array_mut) else {
        return;
    };
    if blocks.len() > SLACK_BLOCKS {
        cut.push(format!("{} blocks to {SLACK_BLOCKS}", blocks.len()));
        blocks.truncate(SLACK_BLOCKS);
    }
    for (i, block) in blocks.iter_mut().enumerate() {
        if block["type"] != "section" {
            continue;
        }
        if let Some(text) = block.pointer_mut("/text/text") {
            cut_value(text, SLACK_SECTION, &format!("blocks[{i}].text"), cut);
        }
    }
}

fn fit_discord(payload: &mut Value, cut: &mut Vec<String>) {
    if let Some(content) = payload.get_mut("content") {
        cut_value(content, 2000, "content", cut);
    }
    let Some(embeds) = payload.get_mut("embeds").and_then(Value::as_array_mut) else {
        return;
    };
    if embeds.len() > 10 {
        cut.push(format!("{} embeds to 10", embeds.len()));
        embeds.truncate(10);
    }
    for (i, embed) in embeds.iter_mut().enumerate() {
        if let Some(fields) = embed.get_mut("fields").and_then(Value::as_array_mut) {
            if fields.len() > 25 {
                cut.push(format!("embeds[{i}]: {} fields to 25", fields.len()));
                fields.truncate(25);
            }
        }
        for (pointer, max) in discord_texts(embed) {
            if let Some(v) = embed.pointer_mut(&pointer) {
                cut_value(v, max, &format!("embeds[{i}]{pointer}"), cut);
            }
        }
    }
    // 6,000 characters across all embeds: the longest text gives way first.
    loop {
        let mut texts: Vec<(usize, String, usize)> = Vec::new();
        for (i, embed) in embeds.iter().enumerate() {
            for (pointer, _) in discord_texts(embed) {
                texts.push((i, pointer.clone(), chars(embed.pointer(&pointer))));
            }
        }
        let total: usize = texts.iter().map(|t| t.2).sum();
        let Some((i, pointer, n)) = texts.into_iter().max_by_key(|t| t.2) else {
            return;
        };
        if total <= 6000 || n <= 1 {
            return;
        }
        let keep = n.saturating_sub(total - 6000).max(n / 2);
        if let Some(v) = embeds.get_mut(i).and_then(|e| e.pointer_mut(&pointer)) {
            cut_value(
                v,
                keep,
                &format!("embeds[{i}]{pointer} (the embeds' total)"),
                cut,
            );
        }
    }
}

/// The texts of an embed Discord limits, as JSON pointers, with each one's limit.
fn discord_texts(embed: &Value) -> Vec<(String, usize)> {
    let mut texts = vec![
        ("/title".to_owned(), 256),
        ("/description".to_owned(), 4096),
        ("/footer/text".to_owned(), 2048),
    ];
    let fields = embed["fields"].as_array().map_or(0, Vec::len);
    for j in 0..fields {
        texts.push((format!("/fields/{j}/name"), 256));
        texts.push((format!("/fields/{j}/value"), 1024));
    }
    texts.retain(|(p, _)| embed.pointer(p).is_some_and(Value::is_string));
    texts
}

fn fit_teams(payload: &mut Value, cut: &mut Vec<String>) {
    // The card may be bare or in the Workflows envelope: cut what it displays either way.
    loop {
        let size = payload.to_string().len();
        if size <= TEAMS_MAX_BYTES {
            return;
        }
        let mut longest: Option<(String, usize)> = None;
        collect_longest(payload, String::new(), &mut longest);
        let Some((pointer, n)) = longest.filter(|(_, n)| *n > 1) else {
            return;
        };
        let excess_chars = size - TEAMS_MAX_BYTES;
        let keep = n.saturating_sub(excess_chars).max(n / 2);
        if let Some(v) = payload.pointer_mut(&pointer) {
            cut_value(v, keep, &format!("{pointer} (the card's size)"), cut);
        }
    }
}

/// The longest displayed text of a card (`text` and `value` strings), as a JSON pointer.
fn collect_longest(v: &Value, at: String, longest: &mut Option<(String, usize)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                if matches!(k.as_str(), "text" | "value") && child.is_string() {
                    let n = chars(Some(child));
                    if longest.as_ref().is_none_or(|(_, m)| n > *m) {
                        *longest = Some((path, n));
                    }
                } else {
                    collect_longest(child, path, longest);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_longest(child, format!("{at}/{i}"), longest);
            }
        }
        _ => {}
    }
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Cuts the string `v` to at most `max` characters (noting it in `cut`); other values and
/// strings within `max` are left alone.
fn cut_value(v: &mut Value, max: usize, place: &str, cut: &mut Vec<String>) {
    let Some(text) = v.as_str() else { return };
    let n = text.chars().count();
    if n <= max {
        return;
    }
    *v = Value::String(cut_text(text, max));
    cut.push(format!("{place}: {n} characters to {max}"));
}

/// `text` cut to at most `max` characters, ending with `…`, never inside `<...>`.
pub fn cut_text(text: &str, max: usize) -> String {
    let cut = truncate_chars(text, max);
    let Some(mut kept) = cut.strip_suffix('…').filter(|_| cut != text) else {
        return cut;
    };
    if let Some(open) = kept.rfind('<') {
        if !kept[open..].contains('>') {
            kept = &kept[..open];
        }
    }
    format!("{}…", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::render::{discord_limits, slack_limits};

    #[test]
    fn a_cut_ends_with_an_ellipsis_on_a_character_boundary_outside_links() {
        assert_eq!(cut_text("héllo wörld", 5), "héll…");
        assert_eq!(cut_text("see <https://x/y|the title> now", 12), "see…");
        assert_eq!(cut_text("ab", 1), "…");
        assert!(cut_text(&"é".repeat(5000), 3000).chars().count() <= 3000);
    }

    #[test]
    fn slack_payloads_are_cut_to_fifty_blocks_and_sections_of_3000() {
        let section =
            json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(5000)}});
        let mut payload = json!({"text": "t", "blocks": vec![section; 60]});
        let cut = fit("slack", &mut payload);
        assert!(!cut.is_empty());
        assert!(
            slack_limits(&payload).is_empty(),
            "{:?}",
            slack_limits(&payload)
        );
        assert_eq!(payload["blocks"].as_array().map(Vec::len), Some(50));
        let mut small =
            json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]});
        let before = small.clone();
        assert!(fit("slack", &mut small).is_empty());
        assert_eq!(small, before, "within the limits: untouched");
    }

    #[test]
    fn discord_payloads_are_cut_per_text_then_to_6000_longest_first() {
        let field = json!({"name": "n".repeat(300), "value": "v".repeat(900)});
        let mut payload = json!({"content": "c".repeat(2500), "embeds": [{
            "title": "t".repeat(300), "description": "d".repeat(4000),
            "fields": vec![field; 30], "footer": {"text": "f"}
        }]});
        fit("discord", &mut payload);
        assert_eq!(discord_limits(&payload), Vec::<String>::new(), "{payload}");
        assert_eq!(
            payload["embeds"][0]["footer"]["text"], "f",
            "short texts stay"
        );
        let mut ok = json!({"embeds": [{"title": "hi", "description": "there"}]});
        assert!(fit("discord", &mut ok).is_empty());
    }

    #[test]
    fn teams_cards_are_cut_to_28_kb_longest_text_first() {
        let card = json!({"type": "AdaptiveCard", "version": "1.4", "body": [
            {"type": "TextBlock", "text": "Devin needs your input"},
            {"type": "TextBlock", "text": "q".repeat(40_000)},
            {"type": "FactSet", "facts": [{"title": "Status", "value": "running"}]}
        ]});
        let mut message = crate::render::teams_message(card);
        let cut = fit("teams", &mut message);
        assert!(!cut.is_empty());
        assert!(message.to_string().len() <= TEAMS_MAX_BYTES);
        let body = &message["attachments"][0]["content"]["body"];
        assert_eq!(body[0]["text"], "Devin needs your input");
        assert_eq!(body[2]["facts"][0]["value"], "running");
        assert!(body[1]["text"].as_str().is_some_and(|t| t.ends_with('…')));
    }
}
