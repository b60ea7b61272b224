//! The event listeners this service runs, each on a durable queue of its own.
//!
//! To add a listener: implement [`application::EventListener`] (a name, the event types it
//! wants, a handler), then add one line to [`built_in`].
use crate::consumer::{ConsumerConfig, ConsumerStats, run_consumer};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::supervise::spawn_vital;
use adapters::{ListenerQueue, PostgresAuditLog, SystemClock, dead_letter_queue, retry_queue};
use application::{AuditEvents, EventListener, LogEvents};
use futures_util::future::BoxFuture;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The listeners every instance runs (unless told to run only some).
/// Settings a listener needs come from `settings` (a new one goes into `Settings` and the
/// README's table, which a test checks).
pub(crate) fn built_in(listeners: &mut Listeners, _settings: &Settings, pool: &PgPool) {
    listeners.add(LogEvents);
    listeners.add(AuditEvents::new(
        PostgresAuditLog::new(pool.clone()),
        SystemClock,
    ));
}

/// The queues a listener declares and consumes from or through.
fn owned_queues(queue: &ListenerQueue) -> [String; 3] {
    [
        queue.name.clone(),
        retry_queue(&queue.name),
        dead_letter_queue(&queue.name),
    ]
}

type Start = Box<dyn FnOnce(ConsumerConfig, CancellationToken) -> BoxFuture<'static, ()> + Send>;

struct Registered {
    name: &'static str,
    event_types: &'static [&'static str],
    queue: ListenerQueue,
    stats: Arc<ConsumerStats>,
    start: Start,
}

/// The registry of listeners, ready to start once the service runs.
pub struct Listeners {
    settings: Settings,
    metrics: Arc<Metrics>,
    registered: Vec<Registered>,
}

impl Listeners {
    pub(crate) fn new(settings: &Settings, metrics: Arc<Metrics>) -> Self {
        Self {
            settings: settings.clone(),
            metrics,
            registered: Vec::new(),
        }
    }

    /// The built-in listeners.
    ///
    /// # Errors
    /// When two would share a queue (see [`Listeners::check`]).
    pub(crate) fn of(
        settings: &Settings,
        pool: &PgPool,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let mut listeners = Self::new(settings, metrics);
        built_in(&mut listeners, settings, pool);
        listeners.check()?;
        Ok(listeners)
    }

    /// Runs `listener` on its own queue. Two listeners with one name, or one queue, are
    /// refused when the service is built (see [`Listeners::check`]).
    pub fn add<L: EventListener>(&mut self, listener: L) -> &mut Self {
        let name = listener.name();
        let listener = Arc::new(listener);
        self.registered.push(Registered {
            name,
            event_types: listener.event_types(),
            queue: self.settings.listener_queue(name, listener.event_types()),
            stats: Arc::new(
                self.metrics
                    .consumer_stats(name, self.settings.consumer_prefetch),
            ),
            start: Box::new(move |config, shutdown| {
                Box::pin(run_consumer(config, listener, shutdown))
            }),
        });
        self
    }

    /// Every listener must have queues of its own (its queue, retry queue and dead-letter
    /// queue): two sharing one would take each other's messages.
    ///
    /// # Errors
    /// Names the two listeners and the queue they would share.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        for (index, entry) in self.registered.iter().enumerate() {
            for other in &self.registered[..index] {
                let shared = if other.name == entry.name {
                    Some(entry.queue.name.clone())
                } else {
                    let theirs = owned_queues(&other.queue);
                    owned_queues(&entry.queue)
                        .into_iter()
                        .find(|queue| theirs.contains(queue))
                };
                if let Some(queue) = shared {
                    anyhow::bail!(
                        "listeners {:?} and {:?} would share queue {queue:?}; give them distinct \
                         names, or change AMQP_QUEUE or AMQP_QUEUE_PREFIX",
                        other.name,
                        entry.name,
                    );
                }
            }
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Option<&Registered> {
        self.registered.iter().find(|entry| entry.name == name)
    }

    /// The listener's queue and the event types it wants.
    #[must_use]
    pub fn subscription(&self, name: &str) -> Option<(&ListenerQueue, &'static [&'static str])> {
        self.find(name)
            .map(|entry| (&entry.queue, entry.event_types))
    }

    /// Every listener's queue, to declare them all before the first event is published.
    #[must_use]
    pub fn queues(&self) -> Vec<ListenerQueue> {
        self.registered
            .iter()
            .map(|entry| entry.queue.clone())
            .collect()
    }

    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.registered.iter().map(|entry| entry.name).collect()
    }

    /// What the listener's consumer has done so far.
    #[must_use]
    pub fn stats(&self, name: &str) -> Option<Arc<ConsumerStats>> {
        self.find(name).map(|entry| entry.stats.clone())
    }

    /// Keeps only the listeners named in `names`.
    ///
    /// # Errors
    /// When a name is not a listener's; the message lists those there are.
    pub(crate) fn retain(&mut self, names: &[String]) -> anyhow::Result<()> {
        if let Some(unknown) = names.iter().find(|name| self.find(name).is_none()) {
            anyhow::bail!(
                "there is no listener {unknown:?}; the listeners are: {}",
                self.names().join(", ")
            );
        }
        self.registered
            .retain(|entry| names.iter().any(|name| name == entry.name));
        Ok(())
    }

    /// Starts one consumer per listener; they run until `shutdown` is cancelled. One that
    /// panics or ends before cancels `failed`.
    pub(crate) fn start(
        self,
        shutdown: &CancellationToken,
        failed: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let settings = self.settings;
        self.registered
            .into_iter()
            .map(|entry| {
                let config = ConsumerConfig {
                    amqp_url: settings.amqp_url.clone(),
                    exchange: settings.amqp_exchange.clone(),
                    queue: entry.queue,
                    event_types: entry.event_types,
                    prefetch: settings.consumer_prefetch,
                    retry: settings.consumer_retry.clone(),
                    stats: entry.stats,
                };
                spawn_vital(
                    entry.name,
                    (entry.start)(config, shutdown.clone()),
                    shutdown,
                    failed,
                )
            })
            .collect()
    }
}
