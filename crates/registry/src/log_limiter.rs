//! Keeps a repeating error from flooding the log: the first occurrence is logged, later
//! ones at most once per interval, with a count of how many were held back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decides whether a recurring message should be logged now.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// Lets one message through per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last_logged: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when the caller should log now, where `n` messages were held back since the
    /// last one logged; `None` when this one should be dropped.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.last_logged {
            Some(last) if now.duration_since(last) < self.interval => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last_logged = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_passes_repeats_are_counted_then_released() {
        let limiter = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(limiter.check_at(t0), Some(0));
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(61)), Some(2));
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(62)), None);
    }
}
