//! Escaping per destination's markup, and the handlebars helpers every template may use
//! (`json`, `truncate`, `plain`, `quote`), each escaping with its registry's function.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::Value;

/// JSON string escaping, without the surrounding quotes.
pub fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
}

/// Slack mrkdwn escaping (`&`, `<`, `>`), then JSON string escaping.
pub fn slack_escape(text: &str) -> String {
    let mut mrkdwn = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => mrkdwn.push_str("&amp;"),
            '<' => mrkdwn.push_str("&lt;"),
            '>' => mrkdwn.push_str("&gt;"),
            c => mrkdwn.push(c),
        }
    }
    json_escape(&mrkdwn)
}

/// Discord markdown escaping (a backslash before every character that formats, links,
/// quotes, heads a line or starts a mention), then JSON string escaping. With
/// `allowed_mentions` empty (set by the sink), no value can format text, mask a link or ping.
pub fn discord_escape(text: &str) -> String {
    let mut md = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '<'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '-'
                | '@'
                | ':'
        ) {
            md.push('\\');
        }
        md.push(c);
    }
    json_escape(&md)
}

/// Teams (Adaptive Card markdown) escaping: a zero-width space after every character that
/// could open formatting, a link or a list (`*`, `_`, `~`, `` ` ``, `[`, `]`, `(`, `)`, `#`,
/// `-`, `>`, `<`), so no pair or sequence of them forms markup while the text reads the same;
/// then JSON string escaping. (Adaptive Card text has no backslash escapes.)
pub fn teams_escape(text: &str) -> String {
    let mut md = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        md.push(c);
        if matches!(
            c,
            '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '#' | '-' | '>' | '<'
        ) {
            md.push('\u{200B}');
        }
    }
    json_escape(&md)
}

/// A helper's first parameter as text: a string as it is, null or absent as empty, anything
/// else as JSON.
fn first_param_text(h: &Helper) -> String {
    match h.param(0).map(|p| p.value()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

pub(super) fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(escape);
    hb.register_helper("json", Box::new(json_helper));
    hb.register_helper("truncate", Box::new(truncate_helper));
    hb.register_helper("plain", Box::new(plain_helper));
    hb.register_helper("quote", Box::new(quote_helper));
    hb
}

/// `{{quote value}}`: a mrkdwn block quote: each line escaped and prefixed with `>`.
fn quote_helper(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    let escape = hb.get_escape_fn();
    let quoted: Vec<String> = text
        .lines()
        .map(|line| format!(">{}", escape(&format!(" {line}"))))
        .collect();
    // The lines are joined by an escaped newline: the output sits inside a JSON string.
    out.write(&quoted.join("\\n"))?;
    Ok(())
}

/// `{{plain value}}`: JSON-escaped but not mrkdwn-escaped, for URLs and `plain_text` fields of
/// Slack blocks, where Slack does not decode `&amp;`.
fn plain_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    out.write(&json_escape(&text))?;
    Ok(())
}

/// `{{json value}}`: the value as JSON, unescaped (for whole objects in webhook templates).
fn json_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
    let text = serde_json::to_string(&value)
        .map_err(|e| RenderErrorReason::Other(format!("json: {e}")))?;
    out.write(&text)?;
    Ok(())
}

/// `{{truncate value 200}}`: at most N characters (cut on a character boundary, `…` appended),
/// escaped like any value.
fn truncate_helper(
    h: &Helper,
    hb: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let text = first_param_text(h);
    let max = h.param(1).and_then(|p| p.value().as_u64()).ok_or_else(|| {
        RenderErrorReason::ParamTypeMismatchForName("truncate", "1".into(), "a whole number".into())
    })?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let cut = crate::event::truncate_chars(&text, max);
    out.write(&hb.get_escape_fn()(&cut))?;
    Ok(())
}
