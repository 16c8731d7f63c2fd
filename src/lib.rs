//! devin-notify: notifications for Devin sessions.
//!
//! Devin has no outgoing webhooks. devin-notify polls the sessions listing of an enterprise
//! account, diffs every page against a snapshot kept in sled, turns differences into events,
//! routes them with admin-edited rules, renders them with handlebars templates and posts them to
//! Slack, Microsoft Teams, Discord or signed generic webhooks, through a durable outbox; the
//! store is sled, or PostgreSQL shared by several processes of which one leads.
//!
//! # Layout
//!
//! A pure core, with I/O at the edges, and no import cycles:
//!
//! - pure (no I/O crate, no edge module): [`model`] (wire types), [`event`] (event types and
//!   stable ids), [`diff`] (snapshot + session -> events), [`rules`] (event -> routes),
//!   [`render`] (event + template -> payload), [`retry`] (backoff), [`de`] (config value
//!   helpers and [`de::Problem`]).
//! - leaves: [`redact`], [`signing`], [`secret`], [`metrics`], [`http`], [`sample`],
//!   [`features`] (features beyond sessions, turned off by a 403).
//! - edges: [`config`] (one file per section, each validating itself), [`devin`] (the API
//!   client), [`store`] (one [`store::Store`], one file per concern, the engine behind
//!   [`store::engine`]'s seam), [`sink`] (one file per destination type behind
//!   [`sink::Sinks`]), [`active`] (config + templates from disk), [`health`] (what the loops
//!   report), [`server`] (health, metrics, and mounting [`api`], the admin API with its
//!   access rules, and [`console`], the web console).
//! - loops and commands: [`poller`] (plan, then per page: diff, once per subject, enrich,
//!   route and render, commit; then reminders; and the account signals, queue and daily
//!   consumption), [`people`] (who a session's creator is in Slack), [`delivery`] (the outbox in order per
//!   session and sink), [`reload`], [`admin`] (check, preview, dead letters, sinks),
//!   [`config::schema()`] (`config schema`: the file's JSON Schema, derived from the types
//!   the loader reads), [`app`] (once, run), [`demo`].
//!
//! `main.rs` only parses the command line.

pub mod active;
pub mod admin;
pub mod api;
pub mod app;
pub mod config;
pub mod console;
pub mod de;
pub mod delivery;
pub mod demo;
pub mod devin;
pub mod diff;
pub mod digest;
pub mod event;
pub mod features;
pub mod health;
pub mod http;
pub mod intervals;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod people;
pub mod poller;
pub mod quiet;
pub mod redact;
pub mod reload;
pub mod render;
pub mod retry;
pub mod rules;
pub mod sample;
pub mod secret;
pub mod server;
pub mod service;
pub mod signing;
pub mod sink;
pub mod store;
