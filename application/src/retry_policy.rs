//! What to do with an event a listener failed on: try again later, or give up on it.
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before attempt 2, 3, ...; the last one repeats.
    pub delays: Vec<Duration>,
    /// After this many failed attempts the event goes to the dead-letter queue.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            max_attempts: 5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    DeadLetter,
}

impl RetryPolicy {
    /// `attempts` counts the attempt that just failed (1 for the first).
    #[must_use]
    pub fn after_failure(&self, attempts: u32) -> AfterFailure {
        if attempts >= self.max_attempts {
            return AfterFailure::DeadLetter;
        }
        let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let delay = self
            .delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        AfterFailure::RetryIn(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_repeat_and_the_last_attempt_dead_letters() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.after_failure(1),
            AfterFailure::RetryIn(Duration::from_secs(1))
        );
        assert_eq!(
            policy.after_failure(2),
            AfterFailure::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            policy.after_failure(3),
            AfterFailure::RetryIn(Duration::from_secs(30))
        );
        assert_eq!(
            policy.after_failure(4),
            AfterFailure::RetryIn(Duration::from_secs(30))
        );
        assert_eq!(policy.after_failure(5), AfterFailure::DeadLetter);
    }
}
