//! The retry pace for reconnecting to a broker or database that went away.
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// 100 ms doubling to 5 s, with jitter so that many instances do not reconnect in lockstep.
/// Never gives up: an outage of any length ends in delivery.
pub fn reconnect_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The next pause; the iterator is endless, the fallback only satisfies the type.
pub fn next_pause(backoff: &mut ExponentialBackoff) -> Duration {
    backoff.next().unwrap_or(Duration::from_secs(5))
}
