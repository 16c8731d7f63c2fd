//! The integration tests, in one test binary (one link instead of one per file, which halves a
//! cold CI build). Each module is a subject; `cargo test --test suite MODULE::` runs one.
//!
//! The shared pieces live beside this directory: `tests/support` (the fake Devin API, the
//! recording receivers, the fake Slack Web API, the WebDriver client, the Standard Webhooks
//! verifier) and `tests/harness` (a test environment and the service under test).

#[macro_use]
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

mod api;
mod beyond;
mod cli;
mod cloudevents;
mod config_schema;
mod console;
mod crash;
mod delivery;
mod diff_props;
mod digest;
mod discord;
mod e2e;
mod faults;
mod ha;
mod history;
mod incremental;
mod messages_cost;
mod org_and_messages;
mod pg_faults;
mod quiet;
mod reminders;
mod service;
mod slack_app;
mod store_import;
mod support_selftest;
mod teams;
