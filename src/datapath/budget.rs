//! Token buckets for what a worker generates on its own (ICMP errors,
//! ADD_ADDR announcements) or hands to the kernel: a number of tokens a
//! second, at most a burst of them held. Time comes from the caller's
//! `now`; a clock going backwards earns nothing. [`RateLimit`] takes its
//! rate at run time (from the config), [`TokenBucket`] in its type.

#[derive(Clone, Copy, Debug)]
pub(super) struct RateLimit {
    ns_per_token: u64,
    burst: u64,
    tokens: u64,
    /// When the tokens were last topped up.
    refilled_ns: u64,
}

impl RateLimit {
    /// A full bucket of `burst` tokens (at least 1) earning `per_sec` (at
    /// least 1, at most 10^9) a second.
    pub(super) fn new(per_sec: u64, burst: u64) -> RateLimit {
        let burst = burst.max(1);
        RateLimit {
            ns_per_token: 1_000_000_000 / per_sec.clamp(1, 1_000_000_000),
            burst,
            tokens: burst,
            refilled_ns: 0,
        }
    }

    /// Takes one token if there is one.
    #[inline]
    pub(super) fn take(&mut self, now_ns: u64) -> bool {
        let earned = now_ns.saturating_sub(self.refilled_ns) / self.ns_per_token;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.refilled_ns = now_ns;
        }
        let ok = self.tokens > 0;
        self.tokens -= u64::from(ok);
        ok
    }
}

/// A [`RateLimit`] of `PER_SEC` tokens a second, bursts of `BURST`.
#[derive(Clone, Copy, Debug)]
pub(super) struct TokenBucket<const PER_SEC: u64, const BURST: u64>(RateLimit);

impl<const PER_SEC: u64, const BURST: u64> TokenBucket<PER_SEC, BURST> {
    /// Takes one token if there is one.
    #[inline]
    pub(super) fn take(&mut self, now_ns: u64) -> bool {
        self.0.take(now_ns)
    }
}

impl<const PER_SEC: u64, const BURST: u64> Default for TokenBucket<PER_SEC, BURST> {
    /// A full bucket.
    fn default() -> Self {
        TokenBucket(RateLimit::new(PER_SEC, BURST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_no_credit_from_a_clock_going_back() {
        let mut b = TokenBucket::<1000, 3>::default();
        let now = 5_000_000_000;
        assert_eq!((0..5).filter(|_| b.take(now)).count(), 3);
        // 1 ms earns one token at 1000/s.
        assert!(b.take(now + 1_000_000));
        assert!(!b.take(now + 1_000_000));
        assert!(!b.take(now - 1_000_000_000));
        // A long idle time refills to the burst, not beyond.
        assert_eq!((0..10).filter(|_| b.take(now + 60_000_000_000)).count(), 3);
    }

    #[test]
    fn a_rate_set_at_run_time_behaves_the_same() {
        let mut b = RateLimit::new(10, 2);
        let now = 1_000_000_000;
        assert_eq!((0..5).filter(|_| b.take(now)).count(), 2);
        assert!(!b.take(now + 99_000_000));
        assert!(b.take(now + 100_000_000));
        // Out-of-range settings are clamped, not a division by zero.
        let mut z = RateLimit::new(0, 0);
        assert!(z.take(0));
        assert!(!z.take(0));
    }
}
