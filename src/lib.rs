//! devin-notify: notifications for Devin sessions.
//!
//! Devin has no outgoing webhooks. devin-notify polls the sessions listing of an enterprise
//! account, diffs every page against a snapshot kept in sled, turns differences into events,
//! routes them with admin-edited rules, renders them with handlebars templates and posts them to
//! Slack incoming webhooks or signed generic webhooks, through a durable outbox.

pub mod active;
pub mod admin;
pub mod app;
pub mod config;
pub mod de;
pub mod delivery;
pub mod demo;
pub mod devin;
pub mod diff;
pub mod event;
pub mod http;
pub mod metrics;
pub mod model;
pub mod poller;
pub mod redact;
pub mod reload;
pub mod render;
pub mod retry;
pub mod rules;
pub mod sample;
pub mod secret;
pub mod server;
pub mod signing;
pub mod sink;
pub mod store;
