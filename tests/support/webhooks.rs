//! An independent Standard Webhooks verifier (https://www.standardwebhooks.com/): HMAC-SHA256
//! over `{id}.{timestamp}.{body}`, keyed with the base64-decoded secret after `whsec_`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::receiver::Received;

/// The three Standard Webhooks headers of one delivery.
#[derive(Clone, Copy, Debug)]
pub struct SignatureHeaders<'a> {
    /// `webhook-id`
    pub id: &'a str,
    /// `webhook-timestamp` (epoch seconds)
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,<base64>` entries
    pub signature: &'a str,
}

impl<'a> SignatureHeaders<'a> {
    /// The headers of a recorded request; Err naming the first one missing.
    pub fn of(rec: &'a Received) -> Result<SignatureHeaders<'a>, String> {
        let get = |name: &str| {
            rec.header(name)
                .ok_or_else(|| format!("missing header {name}"))
        };
        Ok(SignatureHeaders {
            id: get("webhook-id")?,
            timestamp: get("webhook-timestamp")?,
            signature: get("webhook-signature")?,
        })
    }
}

/// The key bytes of a `whsec_<base64>` secret (the prefix is optional, as in the reference
/// libraries).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(b64)
        .map_err(|e| format!("secret is not base64 after whsec_: {e}"))
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<String, String> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| format!("bad HMAC key: {e}"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks the signature (any `v1,` entry may match). Does not check the timestamp's age; see
/// [`verify_fresh`].
pub fn verify(secret: &str, headers: &SignatureHeaders<'_>, body: &[u8]) -> Result<(), String> {
    if headers.id.is_empty() {
        return Err("empty webhook-id".to_string());
    }
    if headers.timestamp.parse::<i64>().is_err() {
        return Err(format!(
            "webhook-timestamp is not an integer: {:?}",
            headers.timestamp
        ));
    }
    let expected = sign(secret, headers.id, headers.timestamp, body)?;
    let expected_sig = expected.trim_start_matches("v1,");
    let mut saw_v1 = false;
    for entry in headers.signature.split(' ').filter(|e| !e.is_empty()) {
        if let Some(sig) = entry.strip_prefix("v1,") {
            saw_v1 = true;
            if sig == expected_sig {
                return Ok(());
            }
        }
    }
    if saw_v1 {
        Err(format!(
            "no signature matches (got {:?}, expected {expected})",
            headers.signature
        ))
    } else {
        Err(format!(
            "webhook-signature has no v1 entry: {:?}",
            headers.signature
        ))
    }
}

/// `verify`, plus what the reference libraries also check: the timestamp is within
/// `tolerance_secs` of `now` (epoch seconds). They use 5 minutes.
pub fn verify_fresh(
    secret: &str,
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), String> {
    verify(secret, headers, body)?;
    let ts: i64 = headers.timestamp.parse().map_err(|_| {
        format!(
            "webhook-timestamp is not an integer: {:?}",
            headers.timestamp
        )
    })?;
    if (now - ts).abs() > tolerance_secs {
        return Err(format!(
            "webhook-timestamp {ts} is more than {tolerance_secs}s away from now ({now})"
        ));
    }
    Ok(())
}

/// Verifies a recorded delivery like a Standard Webhooks library would: headers present,
/// signature valid, timestamp within 5 minutes of the time it was received.
pub fn verify_received(secret: &str, rec: &Received) -> Result<(), String> {
    let headers = SignatureHeaders::of(rec)?;
    let received_at = rec
        .wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    verify_fresh(secret, &headers, &rec.body, received_at, 300)
}
