//! Inbound port: something that reacts to events read from the broker.
use crate::IncomingEvent;
use std::future::Future;

/// A reaction to events. Each listener has a durable queue of its own, named after it and bound
/// to the exchange with its event-type patterns, so listeners never take each other's messages
/// and can be scaled apart.
///
/// Adding one is this trait plus one line in the composition root (see the README).
pub trait EventListener: Send + Sync + 'static {
    /// Names the listener's queue and its inbox records: stable, short, `[a-z0-9._-]`.
    fn name(&self) -> &'static str;

    /// The event types it wants, as topic patterns: `user.registered`, `user.*`, `#` for all.
    fn event_types(&self) -> &'static [&'static str];

    /// Reacts to one event. It may see the same event more than once (delivery is at least
    /// once), so it must be idempotent on [`IncomingEvent::event_id`].
    ///
    /// # Errors
    /// When the reaction failed and the event should be tried again.
    fn handle(&self, event: &IncomingEvent) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Whether `event_type` matches one of `patterns`, with AMQP topic rules: words are separated
/// by `.`, `*` stands for exactly one word and `#` for zero or more.
#[must_use]
pub fn wants(patterns: &[&str], event_type: &str) -> bool {
    let words: Vec<&str> = event_type.split('.').collect();
    patterns.iter().any(|pattern| {
        let pattern: Vec<&str> = pattern.split('.').collect();
        topic_match(&pattern, &words)
    })
}

fn topic_match(pattern: &[&str], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((&"#", rest)) => (0..=words.len()).any(|skip| topic_match(rest, &words[skip..])),
        Some((first, rest)) => words.split_first().is_some_and(|(word, others)| {
            (*first == "*" || first == word) && topic_match(rest, others)
        }),
    }
}

/// The built-in listener `log`: records each event in the log. It reads the seed's queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogEvents;

impl LogEvents {
    pub const NAME: &'static str = "log";
}

impl EventListener for LogEvents {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["#"]
    }

    async fn handle(&self, event: &IncomingEvent) -> anyhow::Result<()> {
        match event {
            IncomingEvent::UserRegistered(registered) => tracing::info!(
                event_id = %registered.event_id,
                user_id = %registered.user_id,
                username = %registered.username,
                "consumed a user.registered event"
            ),
            IncomingEvent::Other {
                event_id,
                event_type,
                ..
            } => {
                tracing::info!(%event_id, %event_type, "ignored an event of a type this service does not handle");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::wants;

    #[test]
    fn patterns_follow_amqp_topic_rules() {
        let cases = [
            ("user.registered", "user.registered", true),
            ("user.*", "user.registered", true),
            ("user.*", "user.email.changed", false),
            ("user.#", "user.email.changed", true),
            ("user.#", "user", true),
            ("#", "user.registered", true),
            ("*.registered", "user.registered", true),
            ("order.*", "user.registered", false),
            ("user.registered", "user.registered.v2", false),
            ("#.changed", "user.email.changed", true),
        ];
        for (pattern, event_type, expected) in cases {
            assert_eq!(
                wants(&[pattern], event_type),
                expected,
                "{pattern} vs {event_type}"
            );
        }
        assert!(wants(&["order.*", "user.*"], "user.registered"));
        assert!(!wants(&[], "user.registered"));
    }
}
