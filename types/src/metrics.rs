//! Prometheus metrics without a registry: counters and histograms kept in atomics by the code
//! that counts, and [`Exposition`], which writes them (and gauges read at scrape time) in
//! Prometheus's text format. Each process renders its own page; the `tessera` binary serves it
//! on `--metrics ADDR` at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0];

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// Observations above the last bound.
    overflow: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        match LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Counters and histograms keyed by label values, created on first use.
#[derive(Debug, Default)]
pub struct Family<T> {
    members: Mutex<BTreeMap<Vec<String>, std::sync::Arc<T>>>,
}

impl<T: Default> Family<T> {
    /// The member for these label values.
    pub fn get(&self, labels: &[&str]) -> std::sync::Arc<T> {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = members.get(labels.iter().map(|l| l.to_string()).collect::<Vec<_>>().as_slice()) {
            return m.clone();
        }
        members
            .entry(labels.iter().map(|l| l.to_string()).collect())
            .or_default()
            .clone()
    }

    fn snapshot(&self) -> Vec<(Vec<String>, std::sync::Arc<T>)> {
        let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A page of metrics in Prometheus's text format.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// `{a="x",b="y"}`, with values escaped.
fn label_set(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        pairs.push(format!("{n}=\"{v}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Exposition {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One metric of `kind` (`counter` or `gauge`) with one sample per label set.
    pub fn samples(&mut self, kind: &str, name: &str, help: &str, labels: &[&str], samples: &[(Vec<String>, f64)]) {
        self.header(name, help, kind);
        for (values, v) in samples {
            let _ = writeln!(self.text, "{name}{} {v}", label_set(labels, values, None));
        }
    }

    /// A metric with a single value.
    pub fn single(&mut self, kind: &str, name: &str, help: &str, value: f64) {
        self.samples(kind, name, help, &[], &[(Vec::new(), value)]);
    }

    /// A gauge of a cluster map's nodes, one sample per state (`alive`, `draining`, `dead`).
    pub fn nodes_by_state(&mut self, name: &str, help: &str, map: &crate::schema::ClusterMap) {
        use crate::schema::NodeState;
        let samples: Vec<(Vec<String>, f64)> = [NodeState::Alive, NodeState::Draining, NodeState::Dead]
            .into_iter()
            .map(|state| {
                let count = map.nodes.values().filter(|n| n.state == state).count();
                (vec![state.name().to_string()], count as f64)
            })
            .collect();
        self.samples("gauge", name, help, &["state"], &samples);
    }

    /// A family of counters.
    pub fn counters(&mut self, name: &str, help: &str, labels: &[&str], family: &Family<AtomicU64>) {
        let samples: Vec<(Vec<String>, f64)> = family
            .snapshot()
            .into_iter()
            .map(|(k, c)| (k, c.load(Ordering::Relaxed) as f64))
            .collect();
        self.samples("counter", name, help, labels, &samples);
    }

    /// A family of histograms.
    pub fn histograms(&mut self, name: &str, help: &str, labels: &[&str], family: &Family<Histogram>) {
        self.header(name, help, "histogram");
        for (values, h) in family.snapshot() {
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let le = bound.to_string();
                let _ = writeln!(
                    self.text,
                    "{name}_bucket{} {cumulative}",
                    label_set(labels, &values, Some(("le", &le)))
                );
            }
            // Everything observed, from the same loads as the buckets, so `+Inf` is never
            // below a bucket even while observations arrive.
            let count = cumulative + h.overflow.load(Ordering::Relaxed);
            let _ = writeln!(
                self.text,
                "{name}_bucket{} {count}",
                label_set(labels, &values, Some(("le", "+Inf")))
            );
            let set = label_set(labels, &values, None);
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(self.text, "{name}_sum{set} {sum}");
            let _ = writeln!(self.text, "{name}_count{set} {count}");
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let counters: Family<AtomicU64> = Family::default();
        counters.get(&["select", "ok"]).fetch_add(3, Ordering::Relaxed);
        counters.get(&["insert", "error"]).fetch_add(1, Ordering::Relaxed);
        let latency: Family<Histogram> = Family::default();
        latency.get(&["select"]).observe(Duration::from_micros(1500));
        latency.get(&["select"]).observe(Duration::from_secs(9));
        let mut page = Exposition::default();
        page.counters("t_statements_total", "Statements.", &["kind", "outcome"], &counters);
        page.histograms("t_seconds", "Latency.", &["kind"], &latency);
        page.single("gauge", "t_open", "Open \"things\".", 2.0);
        let text = page.finish();
        assert!(text.contains("# TYPE t_statements_total counter\n"), "{text}");
        assert!(
            text.contains("t_statements_total{kind=\"select\",outcome=\"ok\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_statements_total{kind=\"insert\",outcome=\"error\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{kind=\"select\",le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{kind=\"select\",le=\"0.002\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{kind=\"select\",le=\"5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{kind=\"select\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_count{kind=\"select\"} 2\n"), "{text}");
        assert!(text.contains("t_open 2\n"), "{text}");
    }
}
