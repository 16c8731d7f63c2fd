//! Small helpers over reqwest shared by the API client and the sinks: reading `Retry-After`
//! and a bounded prefix of an answer's body.

use std::time::Duration;

/// The `Retry-After` of an answer, when it has a readable one (whole seconds or an HTTP date).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::retry::parse_retry_after)
}

/// Reads at most `limit` bytes of a body (as text), never failing: a broken body reads as what
/// arrived.
pub async fn read_prefix(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(limit);
    String::from_utf8_lossy(&bytes).into_owned()
}
