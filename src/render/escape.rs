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

/// Slack mrkdwn escaping: `&`, `<` and `>` as entities (so no value can open a link, a
/// mention or `<!channel>`), and every formatting character (`*`, `_`, `~`, `` ` ``) that
/// could open or close formatting wrapped in zero-width spaces, so that no pair of them bolds,
/// italicises, strikes or codes the text around it while it reads the same. Slack formats only
/// from a marker next to a word boundary, so a marker between two letters or digits
/// (`my_branch`, `2*3`) is left as it is, and a value that is one URL (`https://...` without
/// spaces) keeps its characters so that it still works as a link target (`<{{url}}|...>`).
/// Then JSON string escaping.
pub fn slack_escape(text: &str) -> String {
    let is_url = (text.starts_with("https://") || text.starts_with("http://"))
        && !text.chars().any(char::is_whitespace);
    let chars: Vec<char> = text.chars().collect();
    let mut mrkdwn = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => mrkdwn.push_str("&amp;"),
            '<' => mrkdwn.push_str("&lt;"),
            '>' => mrkdwn.push_str("&gt;"),
            '*' | '_' | '~' | '`' if !is_url && !inside_word(&chars, i) => {
                mrkdwn.push('\u{200B}');
                mrkdwn.push(c);
                mrkdwn.push('\u{200B}');
            }
            c => mrkdwn.push(c),
        }
    }
    json_escape(&mrkdwn)
}

/// True when the character at `i` sits between two letters or digits.
fn inside_word(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).and_then(|j| chars.get(j));
    let after = chars.get(i + 1);
    matches!((before, after), (Some(b), Some(a)) if b.is_alphanumeric() && a.is_alphanumeric())
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
