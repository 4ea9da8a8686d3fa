//! Percentiles of latency samples.

use std::time::Duration;

/// Latency samples, sorted once for any number of percentile queries.
pub(crate) struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    /// Sorts the samples.
    pub(crate) fn new(mut samples: Vec<Duration>) -> Percentiles {
        samples.sort_unstable();
        Percentiles { sorted: samples }
    }

    /// How many samples there are.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `q` quantile (0.99 for p99) by nearest rank, in milliseconds; NaN without samples.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (self.sorted.len() as f64 * q).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1].as_secs_f64() * 1e3
    }

    /// The median, in milliseconds.
    pub(crate) fn median_ms(&self) -> f64 {
        self.ms(0.5)
    }

    /// The largest sample, in milliseconds.
    pub(crate) fn max_ms(&self) -> f64 {
        self.ms(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let p = Percentiles::new((1..=1000).rev().map(Duration::from_millis).collect());
        assert_eq!(p.len(), 1000);
        assert_eq!(p.ms(0.5), 500.0);
        assert_eq!(p.ms(0.99), 990.0);
        assert_eq!(p.ms(0.999), 999.0);
        assert_eq!(p.max_ms(), 1000.0);
        assert!(Percentiles::new(Vec::new()).ms(0.5).is_nan());
    }
}
