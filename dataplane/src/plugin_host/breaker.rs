//! The circuit breaker of one plugin connection.
//!
//! Closed: calls go through; `threshold` consecutive failures open it. Open: calls fail at
//! once for the open period. Then half-open: exactly one call (the probe) goes through;
//! its success closes the breaker, its failure opens it again for twice as long (up to a
//! maximum). Time is passed in, so the state machine is tested without sleeping.

use std::time::{Duration, Instant};

/// Whether a call may go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Allowed,
    /// The breaker is half-open and this call is its single probe: report its outcome.
    Probe,
    /// The breaker is open (or a probe is already out): fail at once.
    Rejected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A consecutive-failure circuit breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    threshold: u32,
    base: Duration,
    max: Duration,
    open_for: Duration,
    failures: u32,
    state: State,
}

impl Breaker {
    /// Opens after `threshold` (at least 1) consecutive failures, for `base`, doubling on each
    /// failed probe up to `max`.
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            base,
            max: max.max(base),
            open_for: base,
            failures: 0,
            state: State::Closed,
        }
    }

    /// Asks to make a call at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::HalfOpen { probing: true } => Admission::Rejected,
        }
    }

    /// Whether calls fail at once now (open and not yet due for a probe, or a probe out).
    pub fn is_open(&self, now: Instant) -> bool {
        match self.state {
            State::Closed => false,
            State::Open { until } => now < until,
            State::HalfOpen { probing } => probing,
        }
    }

    /// A call succeeded: closes the breaker.
    pub fn success(&mut self) {
        self.failures = 0;
        self.open_for = self.base;
        self.state = State::Closed;
    }

    /// A call failed at `now`.
    pub fn failure(&mut self, now: Instant) {
        match self.state {
            State::HalfOpen { .. } => {
                self.open_for = (self.open_for * 2).min(self.max);
                self.state = State::Open {
                    until: now + self.open_for,
                };
            }
            State::Closed => {
                self.failures += 1;
                if self.failures >= self.threshold {
                    self.open_for = self.base;
                    self.state = State::Open {
                        until: now + self.open_for,
                    };
                }
            }
            State::Open { .. } => {}
        }
    }

    /// A probe ended without an outcome (the caller gave up, e.g. the pipeline deadline
    /// cancelled it): the next call may probe.
    pub fn probe_abandoned(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }

    /// Forgets every failure (a fresh connection).
    pub fn reset(&mut self) {
        self.success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_then_probes_once_and_recovers() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = Breaker::new(3, s, 4 * s);
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Admission::Allowed);
            b.failure(t0);
        }
        b.success();
        for _ in 0..3 {
            assert_eq!(b.admit(t0), Admission::Allowed);
            b.failure(t0);
        }
        assert!(b.is_open(t0));
        assert_eq!(b.admit(t0 + s / 2), Admission::Rejected, "open");
        assert_eq!(b.admit(t0 + s), Admission::Probe, "due for a probe");
        assert_eq!(b.admit(t0 + s), Admission::Rejected, "one probe at a time");
        b.failure(t0 + s);
        assert_eq!(b.admit(t0 + 2 * s), Admission::Rejected, "reopened for 2 s");
        assert_eq!(b.admit(t0 + 3 * s), Admission::Probe);
        b.probe_abandoned();
        assert_eq!(
            b.admit(t0 + 3 * s),
            Admission::Probe,
            "an abandoned probe is retried"
        );
        b.success();
        assert!(!b.is_open(t0 + 3 * s));
        assert_eq!(b.admit(t0 + 3 * s), Admission::Allowed);
    }

    #[test]
    fn open_period_is_capped() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = Breaker::new(1, s, 2 * s);
        b.failure(t0);
        let mut t = t0;
        for _ in 0..5 {
            t += 10 * s;
            assert_eq!(b.admit(t), Admission::Probe);
            b.failure(t);
        }
        assert_eq!(
            b.admit(t + 2 * s),
            Admission::Probe,
            "never open longer than max"
        );
    }
}
