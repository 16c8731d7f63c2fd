//! Slack threads: the parent message each (Slack app sink, session) posts in, and the last
//! delivery posted there, so that a redelivery after a crash is recognised (see
//! [`crate::sink::slack_app`]).

use serde::{Deserialize, Serialize};

use super::{on_engine, Backend, Engine, Store, StoreError};

/// The Slack thread of one (sink, session): the parent message and the last delivery posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackThread {
    /// The sink's `channel` when the thread was started (an id or a name); a thread started
    /// in another channel is not replied to.
    pub configured_channel: String,
    /// The channel id Slack answered (`chat.update` takes ids only).
    pub channel: String,
    /// The parent message's `ts`.
    pub ts: String,
    /// The id of the last delivery posted in the thread (the parent or a reply), so that its
    /// redelivery after a crash is recognised and not posted twice.
    pub last_delivery: String,
}

impl Store {
    /// The Slack thread of a (sink, session), if one was started.
    pub async fn slack_thread(
        &self,
        sink: &str,
        session_id: &str,
    ) -> Result<Option<SlackThread>, StoreError> {
        on_engine!(self.slack_thread(sink, session_id))
    }

    /// Records the Slack thread of a (sink, session). The caller flushes before the delivery
    /// that posted it leaves the outbox.
    pub async fn set_slack_thread(
        &self,
        sink: &str,
        session_id: &str,
        thread: &SlackThread,
    ) -> Result<(), StoreError> {
        on_engine!(self.set_slack_thread(sink, session_id, thread))
    }
}
