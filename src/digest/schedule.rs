//! When a digest is due, and for which period: a function of (schedule, time zone, the end of
//! the last period sent, now). Pure: the clock is a value.
//!
//! A digest's period runs from the end of its previous one (exclusive) to the latest scheduled
//! time at or before now (inclusive). Runs missed while devin-notify was down are not sent one
//! by one: the first look after the downtime sends one digest covering the whole gap. A
//! digest seen for the first time sends nothing: its first period starts then.

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use jiff::tz::TimeZone;

/// A period of time: `start_ms` (exclusive) to `end_ms` (inclusive), Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What to do about a digest now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Never seen before: record `now` as the end of its (empty) previous period; send nothing.
    First { mark_ms: u64 },
    /// Send the digest of this period.
    Run(Period),
    /// Nothing is due.
    NotYet,
}

/// Parses a five-field cron expression (`minute hour day-of-month month day-of-week`, names
/// such as `mon-fri` and `jan` allowed).
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 && !text.trim_start().starts_with('@') {
        return Err(format!(
            "`{text}` has {fields} fields; a schedule has five: minute hour day-of-month month day-of-week (e.g. \"0 9 * * mon-fri\")"
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("`{text}` is not a cron expression: {e}"))?;
    // A schedule that never fires (e.g. 30 February) is a mistake.
    let epoch = jiff::Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC);
    if let Err(e) = cron.find_next_occurrence(&epoch, false) {
        return Err(format!("`{text}` never fires: {e}"));
    }
    Ok(cron)
}

/// Looks up an IANA time zone name (`Europe/Paris`) in the bundled tz database.
pub fn parse_timezone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("`{name}` is not an IANA time zone name (e.g. \"Europe/Paris\", \"America/New_York\", \"UTC\")")
    })
}

/// The latest time the schedule fires at or before `now_ms`, in `tz`.
pub fn latest_at_or_before(cron: &Cron, tz: &TimeZone, now_ms: u64) -> Option<u64> {
    let now = jiff::Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
    let found = cron
        .find_previous_occurrence(&now.to_zoned(tz.clone()), true)
        .ok()?;
    u64::try_from(found.timestamp().as_millisecond()).ok()
}

/// The next time the schedule fires after `now_ms`, in `tz`.
pub fn next_after(cron: &Cron, tz: &TimeZone, now_ms: u64) -> Option<u64> {
    let now = jiff::Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
    let found = cron
        .find_next_occurrence(&now.to_zoned(tz.clone()), false)
        .ok()?;
    u64::try_from(found.timestamp().as_millisecond()).ok()
}

/// Whether a digest is due now (see the module's doc). `last_end_ms` is the end of the last
/// period sent (or when the digest was first seen); `None`: never seen.
pub fn due(cron: &Cron, tz: &TimeZone, last_end_ms: Option<u64>, now_ms: u64) -> Due {
    let Some(last) = last_end_ms else {
        return Due::First { mark_ms: now_ms };
    };
    match latest_at_or_before(cron, tz, now_ms) {
        Some(end) if end > last => Due::Run(Period {
            start_ms: last,
            end_ms: end,
        }),
        _ => Due::NotYet,
    }
}
