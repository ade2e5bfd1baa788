//! What is counted per target: monotonic counters, an RTT histogram, and the window of
//! recent results that czerwonk's gauges summarise.

use std::collections::VecDeque;

/// smokeping_prober's default buckets: 50 µs doubling 20 times, up to 26.2144 s.
pub fn default_buckets() -> Vec<f64> {
    (0..20).map(|i| 0.00005 * f64::from(1u32 << i)).collect()
}

/// Counters and distributions of one target (one address family of one configured host).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Echo requests handed to the kernel.
    pub requests: u64,
    /// Replies received in time.
    pub responses: u64,
    /// Requests unanswered when their timeout passed.
    pub timeouts: u64,
    /// Replies that came after their request had timed out (also counted as timeouts).
    pub late: u64,
    /// Second and later replies to one request.
    pub duplicates: u64,
    /// Requests the kernel refused to send (no route, say).
    pub send_errors: u64,
    /// RTT histogram counts, one per bucket bound (not cumulative).
    pub buckets: Vec<u64>,
    /// Sum of the RTTs in seconds.
    pub rtt_sum: f64,
    /// TTL or hop limit of the latest reply.
    pub last_hop_limit: Option<u8>,
    window: VecDeque<Option<f64>>,
    window_size: usize,
}

/// czerwonk's gauges over the window of the last `history-size` results.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    /// Results in the window (answered or lost).
    pub total: usize,
    /// Of which lost.
    pub lost: usize,
    /// Fastest, slowest and mean RTT and its (population) standard deviation, in seconds.
    pub best: f64,
    /// See `best`.
    pub worst: f64,
    /// See `best`.
    pub mean: f64,
    /// See `best`.
    pub std_deviation: f64,
}

impl Stats {
    /// Empty stats with `bounds.len()` buckets and a window of `window_size` results.
    pub fn new(bucket_count: usize, window_size: usize) -> Self {
        Self {
            requests: 0,
            responses: 0,
            timeouts: 0,
            late: 0,
            duplicates: 0,
            send_errors: 0,
            buckets: vec![0; bucket_count],
            rtt_sum: 0.0,
            last_hop_limit: None,
            window: VecDeque::with_capacity(window_size),
            window_size: window_size.max(1),
        }
    }

    /// A reply came in time after `rtt` seconds.
    pub fn answered(&mut self, rtt: f64, bounds: &[f64], hop_limit: Option<u8>) {
        self.responses += 1;
        self.rtt_sum += rtt;
        if let Some(slot) = bounds.iter().position(|&bound| rtt <= bound) {
            self.buckets[slot] += 1;
        }
        if hop_limit.is_some() {
            self.last_hop_limit = hop_limit;
        }
        self.remember(Some(rtt));
    }

    /// A request timed out.
    pub fn timed_out(&mut self) {
        self.timeouts += 1;
        self.remember(None);
    }

    /// A request could not be sent; it counts as lost in the window.
    pub fn send_failed(&mut self) {
        self.send_errors += 1;
        self.remember(None);
    }

    fn remember(&mut self, result: Option<f64>) {
        if self.window.len() == self.window_size {
            self.window.pop_front();
        }
        self.window.push_back(result);
    }

    /// Changes the window size, keeping the newest results.
    pub fn resize_window(&mut self, size: usize) {
        self.window_size = size.max(1);
        while self.window.len() > self.window_size {
            self.window.pop_front();
        }
    }

    /// The window's gauges, as czerwonk computes them.
    pub fn window(&self) -> WindowSummary {
        let total = self.window.len();
        let rtts = || self.window.iter().flatten().copied();
        let answered = rtts().count();
        let mut summary = WindowSummary {
            total,
            lost: total - answered,
            ..WindowSummary::default()
        };
        if answered == 0 {
            return summary;
        }
        summary.best = rtts().fold(f64::INFINITY, f64::min);
        summary.worst = rtts().fold(f64::NEG_INFINITY, f64::max);
        summary.mean = rtts().sum::<f64>() / answered as f64;
        let variance = rtts().map(|r| (r - summary.mean).powi(2)).sum::<f64>() / answered as f64;
        summary.std_deviation = variance.sqrt();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_match_smokeping() {
        let buckets = default_buckets();
        assert_eq!(buckets.len(), 20);
        assert_eq!(buckets[0], 0.00005);
        assert_eq!(buckets[1], 0.0001);
        assert!((buckets[19] - 26.2144).abs() < 1e-9);
    }

    #[test]
    fn histogram_counts_each_rtt_once() {
        let bounds = [0.001, 0.01];
        let mut stats = Stats::new(bounds.len(), 10);
        stats.answered(0.0005, &bounds, Some(64));
        stats.answered(0.001, &bounds, None);
        stats.answered(0.005, &bounds, None);
        stats.answered(5.0, &bounds, None);
        assert_eq!(stats.buckets, [2, 1]);
        assert_eq!(stats.responses, 4);
        assert_eq!(stats.last_hop_limit, Some(64));
        assert!((stats.rtt_sum - 5.0065).abs() < 1e-12);
    }

    #[test]
    fn window_matches_go_ping_monitor() {
        let mut stats = Stats::new(0, 4);
        assert_eq!(stats.window().total, 0);
        for rtt in [0.002, 0.004] {
            stats.answered(rtt, &[], None);
        }
        stats.timed_out();
        let window = stats.window();
        assert_eq!((window.total, window.lost), (3, 1));
        assert_eq!((window.best, window.worst), (0.002, 0.004));
        assert!((window.mean - 0.003).abs() < 1e-12);
        assert!((window.std_deviation - 0.001).abs() < 1e-12);
        // The oldest results leave the window.
        for _ in 0..4 {
            stats.timed_out();
        }
        let window = stats.window();
        assert_eq!((window.total, window.lost, window.best), (4, 4, 0.0));
        assert_eq!(stats.timeouts, 5);
    }
}
