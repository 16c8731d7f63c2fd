//! Enrichment and routing: Devin's question added to the events of sessions that start
//! waiting, and each event rendered for every (rule, sink) it matches.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::active::Active;
use crate::config::SinkConfig;
use crate::devin::Client;
use crate::event::{delivery_id, truncate_chars, Change, Event};
use crate::render::{default_webhook_body, headline};
use crate::rules::routes;
use crate::store::{Commit, Delivery, EventLogEntry, EventRoute, Held, Store, StoreError};

/// Adds the latest Devin message to the events of sessions that start waiting and that some
/// rule routes somewhere (an event no rule sends costs no request). Each event's messages are
/// read at most once (the result is cached by event id), up to `devin.max_concurrent_requests`
/// events at a time. A failure to read is logged and the event goes out without the quote.
/// Returns the ids of the events read for, whose cache the page's commit clears.
pub async fn enrich(
    client: &Client,
    store: &Store,
    active: &Active,
    events: &mut [Event],
) -> Result<Vec<String>, StoreError> {
    let devin = &active.config.devin;
    if !devin.fetch_messages {
        return Ok(Vec::new());
    }
    let wanted: Vec<usize> = (0..events.len())
        .filter(|&i| {
            let e = &events[i];
            e.starts_waiting() && !routes(&active.config.rules, e).is_empty()
        })
        .collect();
    let limit = Arc::new(Semaphore::new(devin.max_concurrent_requests.max(1)));
    let mut reads = JoinSet::new();
    for &i in &wanted {
        let read = MessageRead {
            client: client.clone(),
            store: store.clone(),
            event_id: events[i].id.clone(),
            session_id: events[i].session.session_id.clone(),
            max_chars: devin.last_message_max_chars,
        };
        let limit = limit.clone();
        reads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, read.run().await)
        });
    }
    // Dropping the set (a cancelled poll) aborts the reads still running.
    while let Some(joined) = reads.join_next().await {
        let (i, message) = match joined {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(StoreError::Corrupt {
                    what: "messages".into(),
                    message: format!("a messages read did not finish: {e}"),
                })
            }
        };
        if let Some(event) = events.get_mut(i) {
            event.last_devin_message = message?;
        }
    }
    Ok(wanted.into_iter().map(|i| events[i].id.clone()).collect())
}

/// Reading one event's Devin message: from the cache, else from the API (then cached).
struct MessageRead {
    client: Client,
    store: Store,
    event_id: String,
    session_id: String,
    max_chars: usize,
}

impl MessageRead {
    async fn run(self) -> Result<Option<String>, StoreError> {
        if let Some(cached) = self.store.cached_message(&self.event_id).await? {
            return Ok(cached);
        }
        let found = match self.client.last_devin_message(&self.session_id).await {
            Ok(found) => found.map(|m| truncate_chars(m.trim(), self.max_chars)),
            Err(e) => {
                tracing::warn!(session_id = %self.session_id, event_id = %self.event_id, error = %e, "cannot read the session's messages; notifying without Devin's question");
                // Remembered, so a retried poll does not wait on the endpoint again.
                None
            }
        };
        self.store.cache_message(&self.event_id, &found).await?;
        Ok(found)
    }
}

/// Renders an event for every (rule, sink) it matches: a delivery each, or a dead letter
/// carrying the event when its template fails (so nothing is lost; a retry renders again).
/// Records the event, and where it went, in the event log. A delivery of a rule muted at
/// `detected_at_ms` ([`Active::holds`]) is held in the store instead of queued.
pub fn route_event(active: &Active, event: &Event, detected_at_ms: u64, commit: &mut Commit) {
    let mut routed = Vec::new();
    for route in routes(&active.config.rules, event) {
        if !active.config.sinks.contains_key(route.sink) {
            continue;
        }
        routed.push(EventRoute {
            rule: route.rule.name.clone(),
            sink: route.sink.to_owned(),
        });
        let to_creator = matches!(
            active.config.sinks.get(route.sink),
            Some(SinkConfig::SlackApp(app)) if app.to_creator()
        );
        let creator = match to_creator && event.kind.about_session() {
            true => crate::event::creator_of(&event.session),
            false => None,
        };
        let delivery = |body: String| Delivery {
            id: delivery_id(&event.id, &route.rule.name, route.sink),
            sink: route.sink.to_owned(),
            rule: route.rule.name.clone(),
            session_id: event.subject().to_owned(),
            session_title: event.session.title.clone(),
            event_id: event.id.clone(),
            event_type: event.kind.as_str().to_owned(),
            body,
            detected_at_ms,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            creator: creator.clone(),
        };
        match active.payload(route.rule, route.sink, event) {
            Ok(body) if active.holds(route.rule, detected_at_ms) => {
                tracing::info!(rule = %route.rule.name, sink = route.sink, event_id = %event.id, "held: the rule is muted now");
                commit
                    .held
                    .push(held(event, delivery(body), detected_at_ms));
            }
            Ok(body) => commit.deliveries.push(delivery(body)),
            Err(e) => {
                tracing::error!(rule = %route.rule.name, sink = route.sink, event_id = %event.id, error = %e, "cannot render; the event is kept in the dead letters");
                commit.bury_unrendered(
                    delivery(String::new()),
                    e.to_string(),
                    detected_at_ms,
                    default_webhook_body(event),
                );
            }
        }
    }
    commit.events.push(EventLogEntry {
        id: 0,
        event_id: event.id.clone(),
        event_type: event.kind.as_str().to_owned(),
        session_id: event.subject().to_owned(),
        session_title: event.session.title.clone(),
        // Where the session's snapshot is; an account signal (queue, consumption) has none.
        session_created_at: event
            .kind
            .about_session()
            .then_some(event.session.created_at),
        detected_at_ms,
        routes: routed,
    });
}

/// A delivery held, with what a summary of held deliveries shows of its event.
fn held(event: &Event, delivery: Delivery, held_at_ms: u64) -> Held {
    let link = match &event.change {
        Change::PullRequest { pr_url, .. } => Some(pr_url.clone()),
        _ => Some(event.session.url.clone()),
    };
    Held {
        delivery,
        headline: Some(headline(event).1),
        link: link.filter(|l| !l.is_empty()),
        held_at_ms,
    }
}
