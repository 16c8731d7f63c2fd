//! Internal metrics, rendered in the Prometheus text format at `/metrics`.
//!
//! One process-wide registry of counters, gauges and histograms, each a name plus label pairs.
//! Each internal event of the service records one tracing event and one metric.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<Key, f64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Histogram>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(Registry::default()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
}

/// Adds `by` to a counter.
fn count(name: &'static str, labels: &[(&'static str, &str)], by: f64) {
    *registry().counters.entry(key(name, labels)).or_default() += by;
}

/// Sets a gauge.
fn gauge(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    registry().gauges.insert(key(name, labels), value);
}

/// Records one observation in a histogram.
fn observe(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    let mut reg = registry();
    let h = reg.histograms.entry(key(name, labels)).or_default();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if value <= *bound {
            h.counts[i] += 1;
        }
    }
    h.sum += value;
    h.count += 1;
}

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, kind and help text, defined once below and recorded through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

impl Metric {
    /// Adds `by` to a counter.
    pub fn count(&self, labels: &[(&'static str, &str)], by: f64) {
        count(self.name, labels, by);
    }

    /// Sets a gauge.
    pub fn set(&self, labels: &[(&'static str, &str)], value: f64) {
        gauge(self.name, labels, value);
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, labels: &[(&'static str, &str)], value: f64) {
        observe(self.name, labels, value);
    }
}

const fn metric(name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

/// `outcome`: ok, error.
pub const POLLS: Metric = metric(
    "devin_notify_polls_total",
    Kind::Counter,
    "Polls of the sessions listing, by outcome.",
);
pub const POLL_DURATION: Metric = metric(
    "devin_notify_poll_duration_seconds",
    Kind::Histogram,
    "Duration of complete polls.",
);
/// `status`: the HTTP status, or an error kind (`timeout`, `item_skipped`...).
pub const API_REQUESTS: Metric = metric(
    "devin_notify_api_requests_total",
    Kind::Counter,
    "Requests to the Devin API, by HTTP status (or error kind).",
);
/// `type`: the event type.
pub const EVENTS: Metric = metric(
    "devin_notify_events_total",
    Kind::Counter,
    "Events detected, by type.",
);
/// `sink`, and `outcome`: delivered, retry, dead.
pub const DELIVERIES: Metric = metric(
    "devin_notify_deliveries_total",
    Kind::Counter,
    "Delivery attempts, by sink and outcome (delivered, retry, dead).",
);
/// `sink`.
pub const DELIVERY_LATENCY: Metric = metric(
    "devin_notify_delivery_latency_seconds",
    Kind::Histogram,
    "Time from detection to a 2xx answer, by sink.",
);
pub const OUTBOX_DEPTH: Metric = metric(
    "devin_notify_outbox_depth",
    Kind::Gauge,
    "Deliveries queued.",
);
pub const DEAD_LETTERS: Metric = metric(
    "devin_notify_dead_letters",
    Kind::Gauge,
    "Deliveries in the dead letters.",
);
pub const PAUSED_SINKS: Metric = metric(
    "devin_notify_paused_sinks",
    Kind::Gauge,
    "Sinks paused because their endpoint is gone.",
);
pub const LAST_SUCCESSFUL_POLL: Metric = metric(
    "devin_notify_last_successful_poll_timestamp_seconds",
    Kind::Gauge,
    "When the last poll succeeded (Unix seconds).",
);
/// `outcome`: applied, rejected.
pub const RELOADS: Metric = metric(
    "devin_notify_reloads_total",
    Kind::Counter,
    "Configuration reloads, by outcome (applied, rejected).",
);

/// `sink`: deliveries held while their rule is muted (quiet hours), waiting for its release.
pub const HELD: Metric = metric(
    "devin_notify_held_deliveries",
    Kind::Gauge,
    "Deliveries held while their rule is muted (quiet hours), by sink.",
);

/// 1 on the process that leads (polls and delivers), 0 on a standby.
pub const LEADER: Metric = metric(
    "devin_notify_leader",
    Kind::Gauge,
    "Whether this process leads: 1 it polls and delivers, 0 it stands by.",
);

/// `feature`: queue, consumption, members. 1 while the feature works, 0 once the API refused
/// its endpoint (403: the token lacks its permission).
pub const FEATURE_ENABLED: Metric = metric(
    "devin_notify_feature_enabled",
    Kind::Gauge,
    "Whether a feature beyond sessions is on (1) or off because the API refused its permission (0), by feature.",
);

/// Every metric, in the order `/metrics` shows them.
pub const ALL: &[Metric] = &[
    POLLS,
    POLL_DURATION,
    API_REQUESTS,
    EVENTS,
    DELIVERIES,
    DELIVERY_LATENCY,
    OUTBOX_DEPTH,
    DEAD_LETTERS,
    PAUSED_SINKS,
    LAST_SUCCESSFUL_POLL,
    RELOADS,
    LEADER,
    HELD,
    FEATURE_ENABLED,
];

fn labels_text(labels: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Every metric in the Prometheus text exposition format.
pub fn render() -> String {
    let reg = registry();
    let mut out = String::new();
    for Metric { name, kind, help } in ALL {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
        match *kind {
            Kind::Counter | Kind::Gauge => {
                let map = if *kind == Kind::Counter {
                    &reg.counters
                } else {
                    &reg.gauges
                };
                for ((n, labels), value) in map.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{} {value}", labels_text(labels, None));
                }
            }
            Kind::Histogram => {
                for ((n, labels), h) in reg.histograms.iter().filter(|((n, _), _)| n == name) {
                    for (i, bound) in BUCKETS.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{n}_bucket{} {}",
                            labels_text(labels, Some(("le", bound.to_string()))),
                            h.counts[i]
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        labels_text(labels, Some(("le", "+Inf".into()))),
                        h.count
                    );
                    let _ = writeln!(out, "{n}_sum{} {}", labels_text(labels, None), h.sum);
                    let _ = writeln!(out, "{n}_count{} {}", labels_text(labels, None), h.count);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        EVENTS.count(&[("type", "unit.test")], 2.0);
        OUTBOX_DEPTH.set(&[], 3.0);
        DELIVERY_LATENCY.observe(&[("sink", "unit \"q\"")], 0.3);
        let text = render();
        assert!(text.contains("# TYPE devin_notify_events_total counter"));
        assert!(text.contains("devin_notify_events_total{type=\"unit.test\"} 2"));
        assert!(text.contains("devin_notify_outbox_depth 3"));
        assert!(text.contains(
            "devin_notify_delivery_latency_seconds_bucket{sink=\"unit \\\"q\\\"\",le=\"0.25\"} 0"
        ));
        assert!(text.contains(
            "devin_notify_delivery_latency_seconds_bucket{sink=\"unit \\\"q\\\"\",le=\"0.5\"} 1"
        ));
        assert!(
            text.contains("devin_notify_delivery_latency_seconds_count{sink=\"unit \\\"q\\\"\"} 1")
        );
    }
}
