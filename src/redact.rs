//! Text that is safe to print: URLs without their secret parts, error chains, body excerpts.
//!
//! Webhook URLs are credentials (a Slack webhook's path is its key), API URLs may carry userinfo,
//! and error sources may repeat either: every message that names a place goes through here.

/// An error and its sources, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The first 300 characters of a body, on one line, for error messages and logs, with every URL
/// in it redacted ([`excerpt`]): a receiver may echo the URL it was called at, and a webhook's
/// URL is its key.
pub fn snippet(body: &[u8]) -> String {
    /// Bytes looked at: a body's start is what an excerpt shows.
    const HEAD: usize = 4096;
    let head = String::from_utf8_lossy(&body[..body.len().min(HEAD)]);
    let mut out = excerpt(&head, 300);
    if body.len() > HEAD && !out.ends_with('…') {
        out.push('…');
    }
    out
}

/// `https://user:pass@host/x` -> `https://host/x`.
pub fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// `https://hooks.slack.com/services/T/B/x` -> `https://hooks.slack.com/…`: safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[invalid URL]".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if end < rest.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// `https://user:pass@hooks.slack.com:443/services/x?y` -> `hooks.slack.com:443`: the host
/// (and port) alone, for pages and API answers.
pub fn host_of(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return "[invalid URL]".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_owned()
}

/// Replaces every occurrence of each of `secrets` in `text` with `[redacted]`, longest first.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in sorted {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

/// A text for a log that others read (the delivery log): on one line, every URL in it redacted
/// ([`redact_url`]: a receiver may echo the URL it was called at, query and all), at most
/// `max` characters.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut redacted = String::with_capacity(text.len().min(max * 4));
    let mut rest = text;
    while let Some(at) = url_start(rest) {
        redacted.push_str(&rest[..at]);
        let url_len = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(rest.len() - at);
        redacted.push_str(&redact_url(&rest[at..at + url_len]));
        rest = &rest[at + url_len..];
    }
    redacted.push_str(rest);
    let one_line: String = redacted
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::event::truncate_chars(&one_line, max)
}

/// Where the first `http://` or `https://` URL of a text starts (case-insensitive).
fn url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .filter_map(|scheme| lower.find(scheme))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_redact_echoed_urls_and_stay_short() {
        let echoed =
            b"no such hook: https://hooks.slack.com/services/T0/B0/sekret?token=x\n(see docs)";
        let text = snippet(echoed);
        assert!(
            !text.contains("sekret") && !text.contains("token=x"),
            "{text}"
        );
        assert!(text.contains("https://hooks.slack.com/…"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let long = "é".repeat(10_000);
        let cut = snippet(long.as_bytes());
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with('…'));
        assert_eq!(snippet(b"\xff\xfe ok"), "\u{fffd}\u{fffd} ok");
        assert_eq!(snippet(b""), "");
    }

    #[test]
    fn hosts_only() {
        assert_eq!(
            host_of("https://u:p@hooks.slack.com/services/T0/B0/secret?x=y"),
            "hooks.slack.com"
        );
        assert_eq!(host_of("http://127.0.0.1:8080?token=y"), "127.0.0.1:8080");
        assert_eq!(host_of("garbage"), "[invalid URL]");
    }

    #[test]
    fn scrubbed() {
        let secrets = vec!["/services/T/B/x".to_owned(), "tok".to_owned()];
        assert_eq!(
            scrub("POST https://h/services/T/B/x failed: tok", &secrets),
            "POST https://h[redacted] failed: [redacted]"
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://u:p@127.0.0.1:8080/x?token=y"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(
            redact_url("https://ci.example.com"),
            "https://ci.example.com"
        );
        assert_eq!(redact_url("garbage"), "[invalid URL]");
    }

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(
            strip_userinfo("https://u:p@api.devin.ai/x"),
            "https://api.devin.ai/x"
        );
        assert_eq!(
            strip_userinfo("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn excerpts_redact_urls_and_stay_short() {
        assert_eq!(
            excerpt(
                "sinks.hook: HTTP 400: bad call to https://hooks.example/T/B/secret?k=v, sorry",
                300
            ),
            "sinks.hook: HTTP 400: bad call to https://hooks.example/… sorry"
        );
        assert_eq!(
            excerpt("see HTTP://u:p@h.test/x\nand http://h2.test", 300),
            "see HTTP://h.test/… and http://h2.test"
        );
        let long = "é".repeat(500);
        let short = excerpt(&long, 10);
        assert_eq!(short.chars().count(), 10);
        assert!(short.ends_with('…'));
        assert_eq!(excerpt("plain", 5), "plain");
    }
}
