//! Named time intervals (`[time_intervals.NAME]`), as Alertmanager's `time_intervals`: a time
//! zone, and optionally `times`, `weekdays`, `days_of_month` and `months`. Every field given
//! must match; a field left out matches everything. Pure: the instant is a value.
//!
//! Semantics:
//! - `times` are `{ from, to }` local wall-clock times `HH:MM`, `from` included, `to` excluded;
//!   `to = "24:00"` is the end of the day; a `to` earlier than `from` crosses midnight and ends
//!   the next day. A range that crosses midnight belongs to the day it starts on: with
//!   `weekdays = ["friday"]`, `19:00`-`08:00` covers Friday evening to Saturday 08:00.
//! - Daylight saving: a local time that does not exist on a day (skipped by a spring-forward
//!   change) means the first instant after the gap; a local time that occurs twice (a
//!   fall-back change) means the earlier one.
//! - `weekdays`: names, or ranges `monday:friday` (Alertmanager's order: sunday first, so
//!   `saturday:sunday` is not a range: list both). `days_of_month`: 1..31, negative counting
//!   from the end of the month (-1 is the last day), ranges `1:7`, `-7:-1`. `months`: names
//!   (`january`, `jan`) or numbers 1..12, ranges `june:august`.
//!
//! [`Interval::contains`] says whether an instant is inside; [`Interval::next_change`] is the
//! next instant where that answer changes, so that a service can wake exactly when a mute ends.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::de::{lenient_string, Problem};

/// How far [`Interval::next_change`] looks ahead, in days: a 29th of February on a given
/// weekday comes back within 28 years.
const HORIZON_DAYS: i32 = 28 * 366 + 2;

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `[time_intervals.NAME]` as written in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalSpec {
    /// An IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`). Default: `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Times of day, `{ from = "19:00", to = "08:00" }` (`to` excluded; may cross midnight;
    /// `"24:00"` is the end of the day). Absent: the whole day.
    #[serde(default)]
    pub times: Option<Vec<TimeRange>>,
    /// Day names, or ranges `monday:friday`. Absent: every day.
    #[serde(default)]
    #[schemars(schema_with = "items_schema")]
    pub weekdays: Option<Vec<Item>>,
    /// Days 1..31, negative from the end (-1 the last), or ranges `1:7`, `-7:-1`.
    #[serde(default)]
    #[schemars(schema_with = "items_schema")]
    pub days_of_month: Option<Vec<Item>>,
    /// Month names or numbers 1..12, or ranges `june:august`.
    #[serde(default)]
    #[schemars(schema_with = "items_schema")]
    pub months: Option<Vec<Item>>,
}

/// `{ from = "HH:MM", to = "HH:MM" }`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// Start, included: `HH:MM` (00:00 to 23:59).
    #[serde(deserialize_with = "lenient_string")]
    #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: String,
    /// End, excluded: `HH:MM` (00:01 to 24:00); earlier than `from`: the next day.
    #[serde(deserialize_with = "lenient_string")]
    #[schemars(pattern(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub to: String,
}

/// One entry of `weekdays`, `days_of_month` or `months`: a value or a range, as text (a number
/// is taken as its text).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Item(#[serde(deserialize_with = "lenient_string")] pub String);

fn items_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "items": { "type": ["string", "integer"] }
    })
}

/// A compiled interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    tz: TimeZone,
    /// `(from, to)` in minutes of the day; `to` may be 1440, or below `from` (the next day).
    /// Empty: the whole day.
    times: Vec<(u16, u16)>,
    /// Indexed from sunday.
    weekdays: Option<[bool; 7]>,
    /// Inclusive ranges, negative from the end of the month.
    days_of_month: Option<Vec<(i8, i8)>>,
    /// Indexed from january.
    months: Option<[bool; 12]>,
}

/// Compiled intervals by name.
pub type Intervals = BTreeMap<String, Interval>;

/// Compiles every `[time_intervals.NAME]`; problems name their keys.
pub fn compile(specs: &BTreeMap<String, IntervalSpec>) -> Result<Intervals, Vec<Problem>> {
    let mut out = Intervals::new();
    let mut problems = Vec::new();
    for (name, spec) in specs {
        match Interval::parse(&format!("time_intervals.{name}"), spec) {
            Ok(i) => {
                out.insert(name.clone(), i);
            }
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

impl Interval {
    /// Compiles one interval; `key` (`time_intervals.nights`) prefixes the keys of problems.
    pub fn parse(key: &str, spec: &IntervalSpec) -> Result<Interval, Vec<Problem>> {
        let mut p = Vec::new();
        let tz_name = spec.timezone.as_deref().unwrap_or("UTC").trim();
        let tz = match TimeZone::get(tz_name) {
            Ok(tz) => tz,
            Err(_) => {
                p.push(Problem::new(
                    format!("{key}.timezone"),
                    format!("`{tz_name}` is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)"),
                ));
                TimeZone::UTC
            }
        };
        let times = parse_times(key, spec.times.as_deref(), &mut p);
        let weekdays = spec
            .weekdays
            .as_deref()
            .and_then(|items| parse_named(&format!("{key}.weekdays"), items, &WEEKDAYS, 0, &mut p))
            .map(|ranges| flags::<7>(&ranges, 0));
        let days_of_month = spec
            .days_of_month
            .as_deref()
            .and_then(|items| parse_days(&format!("{key}.days_of_month"), items, &mut p));
        let months = spec
            .months
            .as_deref()
            .and_then(|items| parse_named(&format!("{key}.months"), items, &MONTHS, 1, &mut p))
            .map(|ranges| flags::<12>(&ranges, 1));
        if p.is_empty() {
            Ok(Interval {
                tz,
                times,
                weekdays,
                days_of_month,
                months,
            })
        } else {
            Err(p)
        }
    }

    /// Whether the instant is inside the interval.
    pub fn contains(&self, at: Timestamp) -> bool {
        let today = at.to_zoned(self.tz.clone()).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .flat_map(|day| self.windows(day))
            .any(|(start, end)| start <= at && at < end)
    }

    /// The first instant after `at` where [`Interval::contains`] changes its answer; `None`
    /// when it never does (an interval always or never on) within 28 years.
    pub fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        let inside = self.contains(at);
        let first = at.to_zoned(self.tz.clone()).date().yesterday().ok()?;
        let mut run_end: Option<Timestamp> = None;
        let mut day = first;
        for _ in 0..HORIZON_DAYS {
            for (start, end) in self.windows(day) {
                if end <= at {
                    continue;
                }
                if !inside {
                    // Windows come in the order of their starts; none holds `at`.
                    return Some(start);
                }
                match run_end {
                    Some(e) if start > e => return Some(e),
                    Some(e) => run_end = Some(e.max(end)),
                    None if start <= at => run_end = Some(end),
                    None => return Some(start),
                }
            }
            // A run that ends before the next day's windows can start is over.
            if let Some(e) = run_end {
                let next_day = day.tomorrow().ok()?;
                if e < self.start_of(next_day) {
                    return Some(e);
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// The windows of a day that matches the day fields, in the order of their starts: each
    /// `[start, end)` (empty ones, possible on a daylight-saving day, left out).
    fn windows(&self, day: Date) -> Vec<(Timestamp, Timestamp)> {
        if !self.day_matches(day) {
            return Vec::new();
        }
        let Ok(next) = day.tomorrow() else {
            return Vec::new();
        };
        let mut out: Vec<(Timestamp, Timestamp)> = if self.times.is_empty() {
            vec![(self.start_of(day), self.start_of(next))]
        } else {
            self.times
                .iter()
                .map(|&(from, to)| {
                    let start = self.at(day, from);
                    let end = if to <= from {
                        self.at(next, to)
                    } else {
                        self.at(day, to)
                    };
                    (start, end)
                })
                .collect()
        };
        out.retain(|(s, e)| s < e);
        out.sort();
        out
    }

    fn day_matches(&self, day: Date) -> bool {
        let weekday = day.weekday().to_sunday_zero_offset() as usize;
        let month = (day.month() - 1) as usize;
        self.weekdays.is_none_or(|w| w[weekday])
            && self.months.is_none_or(|m| m[month])
            && self.days_of_month.as_ref().is_none_or(|ranges| {
                let len = day.days_in_month();
                let resolve = |v: i8| if v < 0 { len + 1 + v } else { v };
                ranges
                    .iter()
                    .any(|&(a, b)| (resolve(a)..=resolve(b)).contains(&day.day()))
            })
    }

    /// The instant the day starts (its first minute, as [`Interval::at`] resolves it).
    fn start_of(&self, day: Date) -> Timestamp {
        self.at(day, 0)
    }

    /// The instant of a local time on a day: minute 1440 is the next day's 00:00; a time in a
    /// gap is the first instant after the gap; a time that occurs twice is the earlier.
    fn at(&self, day: Date, minute: u16) -> Timestamp {
        let (day, minute) = if minute >= 1440 {
            (day.tomorrow().unwrap_or(day), minute - 1440)
        } else {
            (day, minute)
        };
        let local: DateTime = day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
        let fallback = || local.to_zoned(TimeZone::UTC).map(|z| z.timestamp());
        let resolved = match self.tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
            AmbiguousOffset::Gap { after, .. } => after
                .to_timestamp(local)
                .ok()
                .and_then(|guess| self.tz.following(guess).next())
                .map(|transition| transition.timestamp()),
        };
        resolved
            .or_else(|| fallback().ok())
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// Whether a rule with these `mute_during` and `active_during` lists holds its deliveries at
/// `at`: while any `mute_during` interval is on, or while none of `active_during` is (when it
/// names any). Names without an interval count as off (validation reports them).
pub fn held(
    mute_during: &[String],
    active_during: &[String],
    all: &Intervals,
    at: Timestamp,
) -> bool {
    let on = |name: &String| all.get(name).is_some_and(|i| i.contains(at));
    mute_during.iter().any(on) || (!active_during.is_empty() && !active_during.iter().any(on))
}

/// The earliest next change of any of the named intervals after `at` (when whether a rule
/// holds may change).
pub fn next_change<'a>(
    names: impl IntoIterator<Item = &'a String>,
    all: &Intervals,
    at: Timestamp,
) -> Option<Timestamp> {
    names
        .into_iter()
        .filter_map(|n| all.get(n))
        .filter_map(|i| i.next_change(at))
        .min()
}

/// `HH:MM` as minutes; `24:00` (1440) only when `end`.
fn parse_hhmm(text: &str, end: bool) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) if end => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_times(key: &str, times: Option<&[TimeRange]>, p: &mut Vec<Problem>) -> Vec<(u16, u16)> {
    let Some(times) = times else {
        return Vec::new();
    };
    if times.is_empty() {
        p.push(Problem::new(
            format!("{key}.times"),
            "is empty: leave it out for the whole day",
        ));
    }
    let mut out = Vec::new();
    for (i, range) in times.iter().enumerate() {
        let from = parse_hhmm(&range.from, false);
        let to = parse_hhmm(&range.to, true);
        if from.is_none() {
            p.push(Problem::new(
                format!("{key}.times[{i}].from"),
                format!(
                    "`{}` is not a time HH:MM between 00:00 and 23:59",
                    range.from
                ),
            ));
        }
        if to.is_none() {
            p.push(Problem::new(
                format!("{key}.times[{i}].to"),
                format!("`{}` is not a time HH:MM between 00:00 and 24:00", range.to),
            ));
        }
        match (from, to) {
            (Some(f), Some(t)) if f == t % 1440 && !(f == 0 && t == 1440) => {
                p.push(Problem::new(
                    format!("{key}.times[{i}].to"),
                    "equals `from`: the range would be empty (for a whole day leave `times` out, or write 00:00 to 24:00)",
                ));
            }
            (Some(f), Some(t)) => out.push((f, t)),
            _ => {}
        }
    }
    out
}

/// One value of `names` (a name, its first three letters, or its number counted from `base`).
fn named_value(text: &str, names: &[&str], base: i32) -> Option<i32> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(i) = names
        .iter()
        .position(|n| *n == t || (t.len() == 3 && n.starts_with(&t)))
    {
        return Some(i as i32 + base);
    }
    let n: i32 = t.parse().ok()?;
    (base..base + names.len() as i32)
        .contains(&n)
        .then_some(n)
        .filter(|_| base == 1)
}

/// Names or ranges of names (weekdays, months) as inclusive ranges of values from `base`.
fn parse_named(
    key: &str,
    items: &[Item],
    names: &[&str],
    base: i32,
    p: &mut Vec<Problem>,
) -> Option<Vec<(i32, i32)>> {
    if items.is_empty() {
        p.push(Problem::new(
            key,
            "is empty: leave it out to match every one",
        ));
        return None;
    }
    let what = if base == 0 { "a weekday" } else { "a month" };
    let before = p.len();
    let mut out = Vec::new();
    for (i, Item(text)) in items.iter().enumerate() {
        let (a, b) = text.split_once(':').unwrap_or((text, text));
        match (named_value(a, names, base), named_value(b, names, base)) {
            (Some(a), Some(b)) if a <= b => out.push((a, b)),
            (Some(_), Some(_)) => p.push(Problem::new(
                format!("{key}[{i}]"),
                format!("`{text}`: a range runs from an earlier to a later one ({} first); list the values instead", names[0]),
            )),
            _ => p.push(Problem::new(
                format!("{key}[{i}]"),
                format!("`{text}` is not {what} or a range of them (such as `{}:{}`)", names[1], names[4]),
            )),
        }
    }
    (p.len() == before).then_some(out)
}

fn flags<const N: usize>(ranges: &[(i32, i32)], base: i32) -> [bool; N] {
    let mut out = [false; N];
    for &(a, b) in ranges {
        for v in a..=b {
            if let Some(f) = usize::try_from(v - base).ok().and_then(|i| out.get_mut(i)) {
                *f = true;
            }
        }
    }
    out
}

fn parse_days(key: &str, items: &[Item], p: &mut Vec<Problem>) -> Option<Vec<(i8, i8)>> {
    if items.is_empty() {
        p.push(Problem::new(
            key,
            "is empty: leave it out to match every day",
        ));
        return None;
    }
    let before = p.len();
    let day = |t: &str| {
        t.trim()
            .parse::<i8>()
            .ok()
            .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
    };
    let mut out = Vec::new();
    for (i, Item(text)) in items.iter().enumerate() {
        let (a, b) = text.split_once(':').unwrap_or((text, text));
        match (day(a), day(b)) {
            (Some(a), Some(b)) if (a > 0) == (b > 0) && a > b => p.push(Problem::new(
                format!("{key}[{i}]"),
                format!("`{text}`: the range ends before it starts"),
            )),
            (Some(a), Some(b)) if a < 0 && b > 0 => p.push(Problem::new(
                format!("{key}[{i}]"),
                format!("`{text}`: a range from the end of the month to its start is empty"),
            )),
            (Some(a), Some(b)) => out.push((a, b)),
            _ => p.push(Problem::new(
                format!("{key}[{i}]"),
                format!("`{text}` is not a day 1..31 (or -31..-1 from the end of the month) or a range of them (such as `1:7`, `-3:-1`)"),
            )),
        }
    }
    (p.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_like: &[(&str, serde_json::Value)]) -> IntervalSpec {
        let map: serde_json::Map<String, serde_json::Value> = toml_like
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).expect("a valid spec shape")
    }

    fn interval(fields: &[(&str, serde_json::Value)]) -> Interval {
        Interval::parse("time_intervals.t", &spec(fields)).expect("valid")
    }

    fn problems(fields: &[(&str, serde_json::Value)]) -> Vec<Problem> {
        Interval::parse("time_intervals.t", &spec(fields)).expect_err("invalid")
    }

    /// A local wall-clock time in `tz` ("2026-01-14T19:00"), as an instant (earlier of two).
    fn local(tz: &str, text: &str) -> Timestamp {
        let dt: DateTime = text.parse().expect("a civil datetime");
        dt.to_zoned(TimeZone::get(tz).expect("tz"))
            .expect("in range")
            .timestamp()
    }

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("an RFC 3339 instant")
    }

    fn nights(tz: &str) -> Interval {
        interval(&[
            ("timezone", tz.into()),
            (
                "times",
                serde_json::json!([{ "from": "19:00", "to": "08:00" }]),
            ),
        ])
    }

    #[test]
    fn across_midnight() {
        let n = nights("Europe/Paris");
        let at = |t: &str| n.contains(local("Europe/Paris", t));
        assert!(!at("2026-01-14T18:59:59"));
        assert!(at("2026-01-14T19:00"));
        assert!(at("2026-01-14T23:59:59"));
        assert!(at("2026-01-15T00:00"));
        assert!(at("2026-01-15T07:59:59"));
        assert!(!at("2026-01-15T08:00"));
        assert!(!at("2026-01-15T12:00"));
        // 19:00 Paris in winter is 18:00 UTC.
        assert!(n.contains(utc("2026-01-14T18:00:00Z")));
        assert!(!n.contains(utc("2026-01-14T17:59:59Z")));
    }

    #[test]
    fn next_change_across_midnight() {
        let n = nights("Europe/Paris");
        let next = |t: &str| n.next_change(local("Europe/Paris", t));
        assert_eq!(
            next("2026-01-14T12:00"),
            Some(local("Europe/Paris", "2026-01-14T19:00"))
        );
        assert_eq!(
            next("2026-01-14T20:00"),
            Some(local("Europe/Paris", "2026-01-15T08:00"))
        );
        assert_eq!(
            next("2026-01-15T03:00"),
            Some(local("Europe/Paris", "2026-01-15T08:00"))
        );
        // At the boundary itself: inside from 19:00, so the next change is the end.
        assert_eq!(
            next("2026-01-14T19:00"),
            Some(local("Europe/Paris", "2026-01-15T08:00"))
        );
        assert_eq!(
            next("2026-01-15T08:00"),
            Some(local("Europe/Paris", "2026-01-15T19:00"))
        );
    }

    #[test]
    fn weekday_boundaries() {
        let weekend = interval(&[
            ("timezone", "Europe/Paris".into()),
            ("weekdays", serde_json::json!(["saturday", "sunday"])),
        ]);
        let at = |t: &str| weekend.contains(local("Europe/Paris", t));
        // 2026-01-16 is a Friday.
        assert!(!at("2026-01-16T23:59:59"));
        assert!(at("2026-01-17T00:00"));
        assert!(at("2026-01-18T23:59:59"));
        assert!(!at("2026-01-19T00:00"));
        // Saturday and Sunday are one run: the next change is Monday 00:00.
        assert_eq!(
            weekend.next_change(local("Europe/Paris", "2026-01-17T10:00")),
            Some(local("Europe/Paris", "2026-01-19T00:00"))
        );
        assert_eq!(
            weekend.next_change(local("Europe/Paris", "2026-01-14T10:00")),
            Some(local("Europe/Paris", "2026-01-17T00:00"))
        );
    }

    #[test]
    fn weeknights_belong_to_the_day_they_start() {
        let weeknights = interval(&[
            ("timezone", "Europe/Paris".into()),
            ("weekdays", serde_json::json!(["monday:friday"])),
            (
                "times",
                serde_json::json!([{ "from": "19:00", "to": "08:00" }]),
            ),
        ]);
        let at = |t: &str| weeknights.contains(local("Europe/Paris", t));
        assert!(at("2026-01-16T23:00"), "Friday night");
        assert!(at("2026-01-17T03:00"), "Friday night, Saturday morning");
        assert!(!at("2026-01-17T20:00"), "Saturday night");
        assert!(!at("2026-01-19T03:00"), "Sunday night, Monday morning");
        assert!(at("2026-01-19T19:00"), "Monday night");
        assert_eq!(
            weeknights.next_change(local("Europe/Paris", "2026-01-17T03:00")),
            Some(local("Europe/Paris", "2026-01-17T08:00"))
        );
        assert_eq!(
            weeknights.next_change(local("Europe/Paris", "2026-01-17T08:00")),
            Some(local("Europe/Paris", "2026-01-19T19:00"))
        );
    }

    #[test]
    fn several_ranges_and_a_run_over_midnight() {
        let i = interval(&[
            ("timezone", "UTC".into()),
            (
                "times",
                serde_json::json!([
                    { "from": "22:00", "to": "24:00" },
                    { "from": "00:00", "to": "06:00" },
                    { "from": "12:00", "to": "13:00" }
                ]),
            ),
        ]);
        assert!(i.contains(utc("2026-05-01T23:30:00Z")));
        assert!(i.contains(utc("2026-05-02T00:00:00Z")));
        assert!(!i.contains(utc("2026-05-02T06:00:00Z")));
        // 22:00-24:00 and 00:00-06:00 of the next day touch: one run to 06:00.
        assert_eq!(
            i.next_change(utc("2026-05-01T22:30:00Z")),
            Some(utc("2026-05-02T06:00:00Z"))
        );
        assert_eq!(
            i.next_change(utc("2026-05-02T07:00:00Z")),
            Some(utc("2026-05-02T12:00:00Z"))
        );
        assert_eq!(
            i.next_change(utc("2026-05-02T12:30:00Z")),
            Some(utc("2026-05-02T13:00:00Z"))
        );
    }

    #[test]
    fn days_of_month_negative_and_ranges() {
        let last = interval(&[("days_of_month", serde_json::json!([-1]))]);
        assert!(last.contains(utc("2026-02-28T12:00:00Z")));
        assert!(!last.contains(utc("2026-02-27T12:00:00Z")));
        assert!(last.contains(utc("2028-02-29T00:00:00Z")), "leap year");
        assert!(!last.contains(utc("2028-02-28T12:00:00Z")));
        assert!(last.contains(utc("2026-04-30T23:59:59Z")));
        assert_eq!(
            last.next_change(utc("2026-02-28T12:00:00Z")),
            Some(utc("2026-03-01T00:00:00Z"))
        );
        assert_eq!(
            last.next_change(utc("2026-03-05T00:00:00Z")),
            Some(utc("2026-03-31T00:00:00Z"))
        );
        let tail = interval(&[("days_of_month", serde_json::json!(["-3:-1"]))]);
        assert!(tail.contains(utc("2026-02-26T00:00:00Z")));
        assert!(!tail.contains(utc("2026-02-25T23:59:59Z")));
        let mixed = interval(&[("days_of_month", serde_json::json!(["25:-1", 1]))]);
        assert!(mixed.contains(utc("2026-02-25T00:00:00Z")));
        assert!(mixed.contains(utc("2026-03-31T00:00:00Z")));
        assert!(mixed.contains(utc("2026-03-01T00:00:00Z")));
        assert!(!mixed.contains(utc("2026-03-02T00:00:00Z")));
        // The 31st does not exist in short months.
        let d31 = interval(&[("days_of_month", serde_json::json!([31]))]);
        assert!(!d31.contains(utc("2026-04-30T12:00:00Z")));
        assert_eq!(
            d31.next_change(utc("2026-04-01T00:00:00Z")),
            Some(utc("2026-05-31T00:00:00Z"))
        );
    }

    #[test]
    fn months_by_name_number_and_range() {
        let summer = interval(&[("months", serde_json::json!(["june:august", 12, "jan"]))]);
        assert!(summer.contains(utc("2026-07-15T00:00:00Z")));
        assert!(summer.contains(utc("2026-12-01T00:00:00Z")));
        assert!(summer.contains(utc("2026-01-31T23:59:59Z")));
        assert!(!summer.contains(utc("2026-05-31T23:59:59Z")));
        assert_eq!(
            summer.next_change(utc("2026-06-10T00:00:00Z")),
            Some(utc("2026-09-01T00:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_in_paris() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let i = interval(&[
            ("timezone", "Europe/Paris".into()),
            (
                "times",
                serde_json::json!([{ "from": "02:30", "to": "05:00" }]),
            ),
        ]);
        // 02:30 does not exist that day: the first instant after the gap, 03:00 CEST.
        assert!(!i.contains(utc("2026-03-29T00:59:59Z")));
        assert!(i.contains(utc("2026-03-29T01:00:00Z")));
        assert!(i.contains(utc("2026-03-29T02:59:59Z")));
        assert!(!i.contains(utc("2026-03-29T03:00:00Z")));
        assert_eq!(
            i.next_change(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // A day later, 02:30 CEST is 00:30 UTC.
        assert!(i.contains(utc("2026-03-30T00:30:00Z")));
        // Nights across the change: 19:00 CET to 08:00 CEST.
        let n = nights("Europe/Paris");
        assert_eq!(
            n.next_change(utc("2026-03-28T19:00:00Z")),
            Some(utc("2026-03-29T06:00:00Z"))
        );
        assert!(n.contains(utc("2026-03-29T05:59:59Z")));
        assert!(!n.contains(utc("2026-03-29T06:00:00Z")));
    }

    #[test]
    fn fall_back_in_paris() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 occurs twice: the earlier (CEST).
        let i = interval(&[
            ("timezone", "Europe/Paris".into()),
            (
                "times",
                serde_json::json!([{ "from": "02:30", "to": "04:00" }]),
            ),
        ]);
        assert!(!i.contains(utc("2026-10-25T00:29:59Z")));
        assert!(i.contains(utc("2026-10-25T00:30:00Z")));
        assert!(i.contains(utc("2026-10-25T02:59:59Z")));
        assert!(!i.contains(utc("2026-10-25T03:00:00Z")));
        assert_eq!(
            i.next_change(utc("2026-10-25T00:30:00Z")),
            Some(utc("2026-10-25T03:00:00Z"))
        );
        // That night lasts an hour longer: 19:00 CEST (17:00 UTC) to 08:00 CET (07:00 UTC).
        let n = nights("Europe/Paris");
        assert_eq!(
            n.next_change(utc("2026-10-24T17:00:00Z")),
            Some(utc("2026-10-25T07:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_in_new_york() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let spring = interval(&[
            ("timezone", "America/New_York".into()),
            (
                "times",
                serde_json::json!([{ "from": "02:15", "to": "06:00" }]),
            ),
        ]);
        assert!(!spring.contains(utc("2026-03-08T06:59:59Z")));
        assert!(spring.contains(utc("2026-03-08T07:00:00Z")));
        assert!(!spring.contains(utc("2026-03-08T10:00:00Z")));
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 twice: the earlier, EDT (05:30 UTC).
        let fall = interval(&[
            ("timezone", "America/New_York".into()),
            (
                "times",
                serde_json::json!([{ "from": "01:30", "to": "03:00" }]),
            ),
        ]);
        assert!(!fall.contains(utc("2026-11-01T05:29:59Z")));
        assert!(fall.contains(utc("2026-11-01T05:30:00Z")));
        assert!(fall.contains(utc("2026-11-01T07:59:59Z")));
        assert!(!fall.contains(utc("2026-11-01T08:00:00Z")));
        assert_eq!(
            fall.next_change(utc("2026-11-01T00:00:00Z")),
            Some(utc("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn always_and_never() {
        let always = interval(&[]);
        assert!(always.contains(utc("2026-01-01T00:00:00Z")));
        assert_eq!(always.next_change(utc("2026-01-01T00:00:00Z")), None);
        let never = interval(&[
            ("days_of_month", serde_json::json!([30])),
            ("months", serde_json::json!(["february"])),
        ]);
        assert!(!never.contains(utc("2026-02-28T00:00:00Z")));
        assert_eq!(never.next_change(utc("2026-01-01T00:00:00Z")), None);
        let whole_day = interval(&[(
            "times",
            serde_json::json!([{ "from": "00:00", "to": "24:00" }]),
        )]);
        assert_eq!(whole_day.next_change(utc("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn held_by_mute_or_outside_active() {
        let mut all = Intervals::new();
        all.insert("nights".into(), nights("UTC"));
        all.insert(
            "weekend".into(),
            interval(&[("weekdays", serde_json::json!(["saturday", "sunday"]))]),
        );
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let night = utc("2026-01-14T22:00:00Z"); // a Wednesday
        let day = utc("2026-01-14T10:00:00Z");
        let saturday = utc("2026-01-17T10:00:00Z");
        let mute = names(&["nights", "weekend"]);
        assert!(held(&mute, &[], &all, night));
        assert!(held(&mute, &[], &all, saturday));
        assert!(!held(&mute, &[], &all, day));
        let active = names(&["nights"]);
        assert!(held(&[], &active, &all, day));
        assert!(!held(&[], &active, &all, night));
        assert!(!held(&[], &[], &all, night));
        assert_eq!(
            next_change(&mute, &all, day),
            Some(utc("2026-01-14T19:00:00Z"))
        );
    }

    #[test]
    fn invalid_inputs_name_their_keys() {
        let keys = |p: Vec<Problem>| p.into_iter().map(|p| p.key).collect::<Vec<_>>();
        assert_eq!(
            keys(problems(&[("timezone", "Mars/Olympus".into())])),
            ["time_intervals.t.timezone"]
        );
        let p = problems(&[(
            "times",
            serde_json::json!([
                { "from": "25:00", "to": "08:00" },
                { "from": "7pm", "to": "24:01" },
                { "from": "24:00", "to": "10:00" },
                { "from": "09:00", "to": "09:00" },
                { "from": "9:00", "to": "10:00" }
            ]),
        )]);
        assert_eq!(
            keys(p),
            [
                "time_intervals.t.times[0].from",
                "time_intervals.t.times[1].from",
                "time_intervals.t.times[1].to",
                "time_intervals.t.times[2].from",
                "time_intervals.t.times[3].to",
                "time_intervals.t.times[4].from",
            ]
        );
        let p = problems(&[(
            "weekdays",
            serde_json::json!(["monday", "funday", "saturday:sunday", 1]),
        )]);
        assert_eq!(
            keys(p),
            [
                "time_intervals.t.weekdays[1]",
                "time_intervals.t.weekdays[2]",
                "time_intervals.t.weekdays[3]",
            ]
        );
        let p = problems(&[(
            "days_of_month",
            serde_json::json!([0, 32, "5:3", "-1:-3", "-1:5", "x"]),
        )]);
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p
            .iter()
            .all(|p| p.key.starts_with("time_intervals.t.days_of_month[")));
        let p = problems(&[(
            "months",
            serde_json::json!([13, "smarch", "march:january", 0]),
        )]);
        assert_eq!(p.len(), 4, "{p:?}");
        let p = problems(&[
            ("times", serde_json::json!([])),
            ("weekdays", serde_json::json!([])),
            ("days_of_month", serde_json::json!([])),
            ("months", serde_json::json!([])),
        ]);
        assert_eq!(
            keys(p),
            [
                "time_intervals.t.times",
                "time_intervals.t.weekdays",
                "time_intervals.t.days_of_month",
                "time_intervals.t.months",
            ]
        );
    }

    #[test]
    fn compile_reports_every_interval() {
        let mut specs = BTreeMap::new();
        specs.insert("a".to_owned(), spec(&[("timezone", "Nowhere/Land".into())]));
        specs.insert(
            "b".to_owned(),
            spec(&[("weekdays", serde_json::json!(["caturday"]))]),
        );
        specs.insert("ok".to_owned(), spec(&[]));
        let p = compile(&specs).expect_err("two bad");
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["time_intervals.a.timezone", "time_intervals.b.weekdays[0]"]
        );
        specs.remove("a");
        specs.remove("b");
        assert_eq!(compile(&specs).map(|c| c.len()), Ok(1));
    }
}
