//! The admin's commands: `check` and `preview`, which send nothing, and the operations on the
//! store behind `dead-letters` and `sinks`, and what an admin sees of them ([`view`]); the
//! delivery log and the event log behind `deliveries` and `events` ([`logs`]).

mod check;
mod digest;
pub mod logs;
mod ops;
mod preview;
pub mod view;

pub use self::check::{check, CheckReport};
pub use self::digest::preview_digest;
pub use self::logs::LogQuery;
pub use self::ops::{
    dead_letters_table, dead_letters_text, execute, purge_dead_letters, purge_text, resume_sink,
    resume_text, retry_dead_letters, retry_sink_dead_letters, retry_text, sinks_table, sinks_text,
    AdminError, AdminOp, Selection,
};
pub use self::preview::{
    preview, preview_quiet, preview_recent, preview_sessions, session_of, PreviewError, PreviewItem,
};
