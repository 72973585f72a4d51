//! Per-object exponential backoff of failed reconciliations.
//!
//! The n-th consecutive failure of one object waits `base * 2^(n-1)`, capped at `max`, with
//! up to 10 % random jitter so that objects failing together do not retry in lockstep. A
//! success forgets the object's failures.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

/// Consecutive failures per key (an object reference).
#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash> Backoff<K> {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: K) -> Duration {
        let n = {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let n = failures.entry(key).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = self.delay(n);
        let jitter = delay.mul_f64(rand::random::<f64>() * 0.1);
        (delay + jitter).min(self.max)
    }

    /// Forgets the failures of `key` (it reconciled successfully, or was deleted).
    pub fn succeeded(&self, key: &K) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The delay before jitter after `n` consecutive failures (`n >= 1`).
    fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(31));
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_caps_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let cases = [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (40, 60)];
        for (n, secs) in cases {
            assert_eq!(b.delay(n), Duration::from_secs(secs), "failure {n}");
        }
        for want in [1.0, 2.0, 4.0] {
            let got = b.failed("a").as_secs_f64();
            assert!(got >= want && got <= want * 1.1, "{got} vs {want}");
        }
        // Another object has its own count.
        assert!(b.failed("b") < Duration::from_millis(1101));
        b.succeeded(&"a");
        assert!(b.failed("a") < Duration::from_millis(1101));
        for _ in 0..50 {
            assert!(b.failed("c") <= Duration::from_secs(60));
        }
    }
}
