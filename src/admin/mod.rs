//! The admin's commands: `check` and `preview`, which send nothing, and the operations on the
//! store behind `dead-letters`, `sinks`, `deliveries` and `events`.

mod check;
mod logs;
mod ops;
mod preview;

pub use self::check::{check, CheckReport};
pub use self::logs::{deliveries_table, events_table, LogQuery};
pub use self::ops::{
    dead_letters_table, execute, execute_remote, purge_dead_letters, purge_text, resume_sink,
    resume_text, retry_dead_letters, retry_text, sinks_table, AdminError, AdminOp, Selection,
};
pub use self::preview::{preview, PreviewError, PreviewItem};
