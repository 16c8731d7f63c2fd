//! Enrichment and routing: Devin's question added to the events of sessions that start
//! waiting, and each event rendered for every (rule, sink) it matches.

use crate::active::Active;
use crate::devin::Client;
use crate::event::{stable_id, truncate_chars, Event};
use crate::render::default_webhook_body;
use crate::rules::routes;
use crate::store::{Commit, DeadLetter, Delivery, Store, StoreError};

/// Adds the latest Devin message to the events of sessions that start waiting, reading each
/// event's messages at most once (the result is cached by event id). A failure to read is
/// logged and the event goes out without the quote.
pub async fn enrich(
    client: &Client,
    store: &Store,
    active: &Active,
    events: &mut [Event],
) -> Result<(), StoreError> {
    let devin = &active.config.devin;
    if !devin.fetch_messages {
        return Ok(());
    }
    for event in events.iter_mut().filter(|e| e.starts_waiting()) {
        let message = match store.cached_message(&event.id).await? {
            Some(cached) => cached,
            None => match client.last_devin_message(&event.session.session_id).await {
                Ok(found) => {
                    let found =
                        found.map(|m| truncate_chars(m.trim(), devin.last_message_max_chars));
                    store.cache_message(&event.id, &found).await?;
                    found
                }
                Err(e) => {
                    tracing::warn!(session_id = %event.session.session_id, event_id = %event.id, error = %e, "cannot read the session's messages; notifying without Devin's question");
                    // Remembered, so a retried poll does not wait on the endpoint again.
                    store.cache_message(&event.id, &None).await?;
                    None
                }
            },
        };
        event.last_devin_message = message;
    }
    Ok(())
}

/// Renders an event for every (rule, sink) it matches: a delivery each, or a dead letter
/// carrying the event when its template fails (so nothing is lost; a retry renders again).
pub fn route_event(active: &Active, event: &Event, detected_at_ms: u64, commit: &mut Commit) {
    for route in routes(&active.config.rules, event) {
        let Some(sink) = active.config.sinks.get(route.sink) else {
            continue;
        };
        let delivery = |body: String| Delivery {
            id: stable_id("msg_", &[&event.id, &route.rule.name, route.sink]),
            sink: route.sink.to_owned(),
            rule: route.rule.name.clone(),
            session_id: event.session.session_id.clone(),
            event_id: event.id.clone(),
            event_type: event.kind.as_str().to_owned(),
            body,
            detected_at_ms,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        };
        match active.templates.render(
            sink.kind(),
            route.rule.template.as_deref(),
            event,
            &route.rule.name,
            route.sink,
        ) {
            Ok(body) => commit.deliveries.push(delivery(body)),
            Err(e) => {
                tracing::error!(rule = %route.rule.name, sink = route.sink, event_id = %event.id, error = %e, "cannot render; the event is kept in the dead letters");
                commit.dead.push(DeadLetter {
                    delivery: delivery(String::new()),
                    reason: e.to_string(),
                    status: None,
                    response_body: String::new(),
                    failed_at_ms: detected_at_ms,
                    event: Some(default_webhook_body(event)),
                });
            }
        }
    }
}
