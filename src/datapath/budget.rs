//! A token bucket for what a worker generates on its own (ICMP errors,
//! ADD_ADDR announcements): `PER_SEC` tokens a second, at most `BURST`
//! held. Time comes from the caller's `now`; a clock going backwards earns
//! nothing.

#[derive(Clone, Copy, Debug)]
pub(super) struct TokenBucket<const PER_SEC: u64, const BURST: u64> {
    tokens: u64,
    /// When the tokens were last topped up.
    refilled_ns: u64,
}

impl<const PER_SEC: u64, const BURST: u64> TokenBucket<PER_SEC, BURST> {
    const NS_PER_TOKEN: u64 = 1_000_000_000 / PER_SEC;

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now_ns: u64) -> bool {
        let earned = now_ns.saturating_sub(self.refilled_ns) / Self::NS_PER_TOKEN;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(BURST);
            self.refilled_ns = now_ns;
        }
        let ok = self.tokens > 0;
        self.tokens -= u64::from(ok);
        ok
    }
}

impl<const PER_SEC: u64, const BURST: u64> Default for TokenBucket<PER_SEC, BURST> {
    /// A full bucket.
    fn default() -> Self {
        TokenBucket {
            tokens: BURST,
            refilled_ns: 0,
        }
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
}
