//! `preview --digest NAME`: the digest as it would be sent now, from the store, for each of
//! its sinks, sending nothing and writing nothing.

use super::preview::{sink_items, PreviewError, PreviewItem};
use crate::active::Active;
use crate::digest::parse_timezone;
use crate::poller::digests::{build, digest_id, preview_period, DIGEST_EVENT};
use crate::store::Store;

/// The payload each of the digest's sinks would receive now: the period from the end of the
/// last one sent (a digest never sent: `store.history_retention` ago) to `now_ms`.
pub async fn preview_digest(
    active: &Active,
    store: &Store,
    name: &str,
    now_ms: u64,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let Some(d) = active.config.digests.iter().find(|d| d.name == name) else {
        let names: Vec<&str> = active
            .config
            .digests
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        return Err(PreviewError::NoDigest(
            name.to_owned(),
            crate::rules::listed(&names),
        ));
    };
    let store_err = |e: crate::store::StoreError| PreviewError::Store(e.to_string());
    let tz = parse_timezone(&d.timezone)
        .map_err(|e| PreviewError::Store(format!("digest `{name}`: {e}")))?;
    let period = preview_period(store, active, name, now_ms)
        .await
        .map_err(store_err)?;
    let digest = build(store, d, &tz, period, now_ms)
        .await
        .map_err(store_err)?;
    let id = digest_id(name, period);
    sink_items(active, &d.sinks, DIGEST_EVENT, |sink| {
        active.digest_payload(d, sink, &digest, &id)
    })
}
