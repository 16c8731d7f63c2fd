//! devin-notify: notifications for Devin sessions.
//!
//! Devin has no outgoing webhooks. devin-notify polls the sessions listing of an enterprise
//! account, diffs every page against a snapshot kept in sled, turns differences into events,
//! routes them with admin-edited rules, renders them with handlebars templates and posts them to
//! Slack incoming webhooks or signed generic webhooks, through a durable outbox.
//!
//! # Layout
//!
//! A pure core, with I/O at the edges:
//!
//! - pure: [`diff`] (old snapshot + new session -> [`event::Event`]s), [`rules`] (event ->
//!   routes), [`render`] (event + template -> payload), [`retry`] (backoff, `Retry-After`).
//! - edges: [`devin`] (API client and wire model), [`store`] (sled: snapshots, outbox, dead
//!   letters, meta, Slack threads), [`sink`] (Slack, webhook, signing), [`slack_app`] (a Slack
//!   app: a thread per session), [`config`] (figment).
//! - loops: [`poller`] (list, diff, route, render, commit per page) and [`delivery`] (send the
//!   outbox in order per session and sink, retry, bury), joined by [`app`].
//!
//! `main.rs` only parses the command line and calls [`app`].

pub mod admin;
pub mod app;
pub mod config;
pub mod de;
pub mod delivery;
pub mod demo;
pub mod devin;
pub mod diff;
pub mod event;
pub mod metrics;
pub mod poller;
pub mod reload;
pub mod render;
pub mod retry;
pub mod rules;
pub mod sample;
pub mod secret;
pub mod server;
pub mod sink;
pub mod slack_app;
pub mod store;
