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
pub fn count(name: &'static str, labels: &[(&'static str, &str)], by: f64) {
    *registry().counters.entry(key(name, labels)).or_default() += by;
}

/// Sets a gauge.
pub fn gauge(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    registry().gauges.insert(key(name, labels), value);
}

/// Records one observation in a histogram.
pub fn observe(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
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

/// The help text of each metric.
const HELP: &[(&str, &str, &str)] = &[
    (
        "devin_notify_polls_total",
        "counter",
        "Polls of the sessions listing, by outcome.",
    ),
    (
        "devin_notify_poll_duration_seconds",
        "histogram",
        "Duration of complete polls.",
    ),
    (
        "devin_notify_api_requests_total",
        "counter",
        "Requests to the Devin API, by HTTP status (or error kind).",
    ),
    (
        "devin_notify_events_total",
        "counter",
        "Events detected, by type.",
    ),
    (
        "devin_notify_deliveries_total",
        "counter",
        "Delivery attempts, by sink and outcome (delivered, retry, dead).",
    ),
    (
        "devin_notify_delivery_latency_seconds",
        "histogram",
        "Time from detection to a 2xx answer, by sink.",
    ),
    ("devin_notify_outbox_depth", "gauge", "Deliveries queued."),
    (
        "devin_notify_dead_letters",
        "gauge",
        "Deliveries in the dead letters.",
    ),
    (
        "devin_notify_paused_sinks",
        "gauge",
        "Sinks paused because their endpoint is gone.",
    ),
    (
        "devin_notify_last_successful_poll_timestamp_seconds",
        "gauge",
        "When the last poll succeeded (Unix seconds).",
    ),
    (
        "devin_notify_reloads_total",
        "counter",
        "Configuration reloads, by outcome (applied, rejected).",
    ),
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
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        match *kind {
            "counter" | "gauge" => {
                let map = if *kind == "counter" {
                    &reg.counters
                } else {
                    &reg.gauges
                };
                for ((n, labels), value) in map.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{} {value}", labels_text(labels, None));
                }
            }
            _ => {
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
        count("devin_notify_events_total", &[("type", "unit.test")], 2.0);
        gauge("devin_notify_outbox_depth", &[], 3.0);
        observe(
            "devin_notify_delivery_latency_seconds",
            &[("sink", "unit \"q\"")],
            0.3,
        );
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
