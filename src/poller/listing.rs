//! Planning and reading a listing: which listing a poll makes (full or incremental, silent or
//! not), and its pages one after the other, the next one fetched while this one is handled.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::page::Mode;
use crate::active::Active;
use crate::devin::{ApiError, Client, ListBounds};
use crate::model::Page;
use crate::store::{now_ms, Store, StoreError, META_HIGH_WATER, META_LAST_FULL, META_SCOPE};

/// Pages one listing may have at most (20 million sessions at 200 a page).
pub const MAX_PAGES: usize = 100_000;

/// Which listing a poll makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every session the filters select.
    Full,
    /// Sessions updated after this epoch second (the high-water mark minus the overlap).
    Since(i64),
}

/// What one poll lists and how it reads it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Whether this listing records a baseline (the first one, or a new scope).
    pub baseline: bool,
    pub mode: Mode,
    pub listing: Listing,
    pub bounds: ListBounds,
    /// The listing's scope (endpoint and filters) and the one stored.
    pub scope: u64,
    pub stored_scope: Option<u64>,
    /// The high-water mark stored before this listing.
    pub old_mark: Option<u64>,
    /// The ACU thresholds of the rules.
    pub thresholds: Arc<[f64]>,
}

impl Plan {
    /// Plans the next listing from the store's marks. When the listing's scope changed, the
    /// sessions it brings in are not new: the listing is a silent baseline for them.
    pub async fn make(client: &Client, store: &Store, active: &Active) -> Result<Plan, StoreError> {
        let scope = scope_of(client);
        let stored_scope = store.meta_u64(META_SCOPE).await?;
        let baseline_done = store.baseline_done().await?;
        let rescoped = stored_scope.is_some_and(|s| s != scope) && baseline_done;
        if rescoped {
            tracing::info!("the listing's endpoint or filters changed: recording the sessions now in scope silently");
        }
        let baseline = !baseline_done || rescoped;
        let mode = if rescoped {
            Mode::Baseline(crate::config::Baseline::Silent)
        } else if baseline {
            Mode::Baseline(active.config.store.baseline)
        } else {
            Mode::Diff
        };
        let listing = choose_listing(store, active, baseline).await?;
        let bounds = ListBounds {
            updated_after: match listing {
                Listing::Full => None,
                Listing::Since(t) => Some(t),
            },
        };
        Ok(Plan {
            baseline,
            mode,
            listing,
            bounds,
            scope,
            stored_scope,
            old_mark: store.meta_u64(META_HIGH_WATER).await?,
            thresholds: active
                .config
                .rules
                .iter()
                .filter_map(|r| r.acus_threshold())
                .collect(),
        })
    }
}

/// Chooses the listing: full for the baseline, when no mark is stored, or when the last full
/// listing is older than `devin.full_resync_every`; otherwise incremental.
pub async fn choose_listing(
    store: &Store,
    active: &Active,
    baseline: bool,
) -> Result<Listing, StoreError> {
    let devin = &active.config.devin;
    if baseline || devin.full_resync_every.is_zero() {
        return Ok(Listing::Full);
    }
    let (Some(mark), Some(last_full)) = (
        store.meta_u64(META_HIGH_WATER).await?,
        store.meta_u64(META_LAST_FULL).await?,
    ) else {
        return Ok(Listing::Full);
    };
    let since_full = Duration::from_millis(now_ms().saturating_sub(last_full));
    if since_full >= devin.full_resync_every {
        return Ok(Listing::Full);
    }
    Ok(Listing::Since(
        (mark as i64).saturating_sub(devin.overlap_secs()),
    ))
}

/// A fingerprint of what a listing covers: its path and filters.
fn scope_of(client: &Client) -> u64 {
    let mut text = client.list_path();
    for (k, v) in client.filters() {
        text.push('&');
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    fingerprint(text.as_bytes())
}

/// A stable 64-bit FNV-1a hash (of a listing's scope).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One page read, with what comes after it.
pub struct Fetched {
    pub page: Page,
    /// The listing ends with this page.
    pub last: bool,
    /// Why the listing cannot go on after this page (a bad cursor): reported once this page is
    /// committed.
    pub following: Result<(), ApiError>,
}

/// The pages of one listing, in order. The next page is requested (and decoded, on another
/// worker thread) while the current one is handled; listing requests stay one at a time and in
/// order.
pub struct Pages<'a> {
    client: &'a Client,
    bounds: ListBounds,
    next: Prefetch,
    cursors: HashSet<String>,
    /// Pages read so far.
    pub count: usize,
}

impl<'a> Pages<'a> {
    /// Requests the first page.
    pub fn start(client: &'a Client, bounds: &ListBounds) -> Pages<'a> {
        Pages {
            client,
            bounds: bounds.clone(),
            next: Prefetch::start(client, bounds, None),
            cursors: HashSet::new(),
            count: 0,
        }
    }

    /// The next page, and the request of the one after it.
    pub async fn next(&mut self) -> Result<Fetched, ApiError> {
        let page = self.next.page(self.client).await?;
        self.count += 1;
        for why in &page.skipped {
            crate::metrics::API_REQUESTS.count(&[("status", "item_skipped")], 1.0);
            tracing::warn!(
                page = self.count,
                "skipped an item that is not a session: {why}"
            );
        }
        // An empty page that announces more is treated as the end (a listing cannot progress
        // on empty pages), and so is a listing past MAX_PAGES.
        let last = !page.has_next_page || page.items.is_empty() && page.skipped.is_empty();
        if page.has_next_page && last {
            tracing::warn!(
                page = self.count,
                "an empty page announces more; taking it as the end of the listing"
            );
        }
        if self.count >= MAX_PAGES && !last {
            return Err(ApiError::Decode {
                url: self.client.listing_url(),
                message: format!("the listing goes on past {MAX_PAGES} pages; stopping"),
            });
        }
        let mut following = Ok(());
        if !last {
            match self.next_cursor(&page) {
                Ok(cursor) => {
                    self.next = Prefetch::start(self.client, &self.bounds, Some(cursor));
                    // Let the fetch send its request now. (On a runtime worker, a task spawned
                    // from a task runs on that worker, next: without this it would wait for this
                    // page's store work, which does not yield. Its answer is then read and
                    // decoded on another worker.)
                    tokio::task::yield_now().await;
                }
                Err(e) => following = Err(e),
            }
        }
        Ok(Fetched {
            page,
            last,
            following,
        })
    }

    /// The cursor of the page after `page`: present, and not seen before in this listing.
    fn next_cursor(&mut self, page: &Page) -> Result<String, ApiError> {
        let cursor = page
            .end_cursor
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::Decode {
                url: self.client.listing_url(),
                message: "has_next_page is true but end_cursor is missing".into(),
            })?;
        if !self.cursors.insert(cursor.clone()) {
            return Err(ApiError::CursorLoop {
                url: self.client.listing_url(),
                cursor,
            });
        }
        Ok(cursor)
    }
}

/// A listing page being requested and decoded by a task of its own; the request is cancelled
/// when this is dropped (a poll that fails or is cancelled leaves nothing running).
struct Prefetch(tokio::task::JoinHandle<Result<Page, ApiError>>);

impl Prefetch {
    fn start(client: &Client, bounds: &ListBounds, after: Option<String>) -> Prefetch {
        let (client, bounds) = (client.clone(), bounds.clone());
        Prefetch(tokio::spawn(async move {
            client.list_page(&bounds, after.as_deref()).await
        }))
    }

    async fn page(&mut self, client: &Client) -> Result<Page, ApiError> {
        match (&mut self.0).await {
            Ok(page) => page,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ApiError::Transport {
                url: client.listing_url(),
                message: format!("the page's request did not finish: {e}"),
            }),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_fnv1a() {
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fingerprint(b"{\"a\":1}"), fingerprint(b"{\"a\":2}"));
    }
}
