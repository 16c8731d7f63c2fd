//! Creators: who a Devin user is in Slack, for each Slack app sink that sends direct messages
//! (`to = "creator"`). A cache with a time to live, negative results included, kept among the
//! named values (`people/<sink>/<user id>`) of either engine.

use serde::{Deserialize, Serialize};

use super::{decode, encode, on_engine, Backend, Engine, Store, StoreError};

/// The outcome of one creator lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPerson {
    /// The Slack user id found (`None`: not resolvable).
    pub slack_user: Option<String>,
    /// Why not, when not resolvable.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it was looked up (Unix milliseconds).
    pub at_ms: u64,
    /// The `[people]` entry it came from: an outcome is used only while that entry is the
    /// same (an edited or added entry takes effect at once, not after `lookup_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<String>,
}

fn name(sink: &str, user_id: &str) -> String {
    format!("people/{sink}/{user_id}")
}

impl Store {
    /// The cached lookup of a (sink, Devin user), whatever its age.
    pub async fn cached_person(
        &self,
        sink: &str,
        user_id: &str,
    ) -> Result<Option<CachedPerson>, StoreError> {
        let key = name(sink, user_id);
        match self.meta(&key).await? {
            Some(bytes) => decode(&format!("meta/{key}"), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Records the lookup of a (sink, Devin user).
    pub async fn cache_person(
        &self,
        sink: &str,
        user_id: &str,
        person: &CachedPerson,
    ) -> Result<(), StoreError> {
        let key = name(sink, user_id);
        let bytes = encode(person);
        on_engine!(self.set_meta(&key, &bytes))
    }
}
