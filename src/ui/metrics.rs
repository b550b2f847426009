//! Histograms of update() and view() durations, to show the console stays responsive while
//! a large sync runs. Buckets are powers of two in microseconds; atomics because view() takes `&self`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = 24;

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        let bucket = (64 - us.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us.load(Ordering::Relaxed))
    }

    pub fn mean(&self) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.total_us.load(Ordering::Relaxed) / n)
    }

    /// Upper bound of the bucket holding the given quantile (0.0–1.0).
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        let target = ((n as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return Duration::from_micros(if i == 0 { 1 } else { 1u64 << i });
            }
        }
        self.max()
    }

    /// "n=.. mean=.. p50≤.. p99≤.. max=.." for the log.
    pub fn summary(&self) -> String {
        format!(
            "n={} mean={:?} p50<={:?} p90<={:?} p99<={:?} max={:?}",
            self.count(),
            self.mean(),
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.max()
        )
    }

    /// Bucket lines "≤ 256µs: 12" for the non-empty buckets.
    pub fn buckets(&self) -> Vec<(Duration, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    Duration::from_micros(if i == 0 { 1 } else { 1u64 << i }),
                    b.load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The console's timing figures.
#[derive(Debug, Default)]
pub struct UiMetrics {
    pub update: Histogram,
    pub view: Histogram,
    pub engine_events: AtomicU64,
}

impl UiMetrics {
    pub fn log(&self) {
        tracing::info!(
            target: "fabric_console::ui::metrics",
            update = %self.update.summary(),
            view = %self.view.summary(),
            engine_events = self.engine_events.load(Ordering::Relaxed),
            "console responsiveness"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(20));
        h.record(Duration::from_millis(40));
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), Duration::from_micros(128));
        assert_eq!(h.quantile(0.99), Duration::from_micros(32_768));
        assert_eq!(h.max(), Duration::from_millis(40));
        assert!(h.summary().starts_with("n=100"));
    }
}
