//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
use crate::consumer::ConsumerStats;
use adapters::{AuthCache, BrokerState, PostgresOutbox};
use application::PasswordHasher;
use domain::{Password, PasswordHash};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabels {
    operation: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the service exports; cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    registrations: Counter,
    hash_duration: HistogramFamily<HashLabels>,
    outbox_pending: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    published: Counter,
    returned: Counter,
    nacked: Counter,
    broker_connected: Gauge,
    auth_cache_serving: Gauge,
    handled: Family<ListenerLabels, Counter>,
    retried: Family<ListenerLabels, Counter>,
    dead_lettered: Family<ListenerLabels, Counter>,
    skipped: Family<ListenerLabels, Counter>,
    in_flight: Family<ListenerLabels, Gauge>,
    prefetch: Family<ListenerLabels, Gauge>,
}

fn http_buckets() -> Histogram {
    // 1 ms to ~8 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

fn hash_buckets() -> Histogram {
    // 5 ms to ~430 ms: where argon2id lives on anything from a laptop to a busy server.
    Histogram::new(exponential_buckets(0.005, 1.5, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("registrar"),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_buckets),
            registrations: Counter::default(),
            hash_duration: Family::new_with_constructor(hash_buckets),
            outbox_pending: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            published: Counter::default(),
            returned: Counter::default(),
            nacked: Counter::default(),
            broker_connected: Gauge::default(),
            auth_cache_serving: Gauge::default(),
            handled: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            skipped: Family::default(),
            in_flight: Family::default(),
            prefetch: Family::default(),
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&mut self) {
        let r = &mut self.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            self.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            self.http_duration.clone(),
        );
        r.register(
            "registrations",
            "Accounts created (idempotent replays not counted)",
            self.registrations.clone(),
        );
        r.register(
            "password_hash_duration_seconds",
            "Time of one argon2id hash or verification, waiting included",
            self.hash_duration.clone(),
        );
        r.register(
            "outbox_pending_events",
            "Events committed but not yet confirmed by the broker",
            self.outbox_pending.clone(),
        );
        r.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending event (0 when none)",
            self.outbox_oldest_age.clone(),
        );
        r.register(
            "events_published",
            "Events the broker confirmed",
            self.published.clone(),
        );
        r.register(
            "events_returned",
            "Publishes returned as unroutable (kept pending, retried)",
            self.returned.clone(),
        );
        r.register(
            "events_nacked",
            "Publishes the broker refused (kept pending, retried)",
            self.nacked.clone(),
        );
        r.register(
            "broker_connected",
            "1 while the outbox relay holds a working connection to RabbitMQ",
            self.broker_connected.clone(),
        );
        r.register(
            "auth_cache_serving",
            "1 while the cache of live sessions follows PostgreSQL's notifications and serves",
            self.auth_cache_serving.clone(),
        );
        r.register(
            "listener_events_handled",
            "Events a listener processed and acked",
            self.handled.clone(),
        );
        r.register(
            "listener_events_retried",
            "Failed events sent to the retry queue",
            self.retried.clone(),
        );
        r.register(
            "listener_events_dead_lettered",
            "Messages moved to the dead-letter queue",
            self.dead_lettered.clone(),
        );
        r.register(
            "listener_events_skipped",
            "Events of types the listener did not ask for, acked",
            self.skipped.clone(),
        );
        r.register(
            "listener_in_flight",
            "Messages handed to the listener and not yet settled",
            self.in_flight.clone(),
        );
        r.register(
            "listener_prefetch",
            "Most unacked messages the consumer may hold",
            self.prefetch.clone(),
        );
    }

    /// One answered HTTP request.
    pub fn observe_request(&self, labels: HttpLabels, elapsed: Duration, new_account: bool) {
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
        if new_account {
            self.registrations.inc();
        }
    }

    /// What one relay batch did.
    pub fn observe_relay(&self, report: &application::RelayReport) {
        self.published.inc_by(report.published as u64);
        self.returned.inc_by(report.returned as u64);
        self.nacked.inc_by(report.nacked as u64);
    }

    /// The counters of `listener`'s consumer, registered under its name.
    pub(crate) fn consumer_stats(&self, listener: &str, prefetch: u16) -> ConsumerStats {
        let labels = ListenerLabels {
            listener: listener.to_owned(),
        };
        self.prefetch
            .get_or_create(&labels)
            .set(i64::from(prefetch));
        ConsumerStats {
            handled: self.handled.get_or_create(&labels).clone(),
            retried: self.retried.get_or_create(&labels).clone(),
            dead_lettered: self.dead_lettered.get_or_create(&labels).clone(),
            skipped: self.skipped.get_or_create(&labels).clone(),
            in_flight: self.in_flight.get_or_create(&labels).clone(),
        }
    }

    /// The text exposition, with the gauges read now.
    pub async fn render(
        &self,
        outbox: &PostgresOutbox,
        broker: &BrokerState,
        auth_cache: &AuthCache,
    ) -> String {
        self.broker_connected.set(i64::from(broker.is_connected()));
        self.auth_cache_serving
            .set(i64::from(auth_cache.is_serving()));
        // On failure the last known values stay; readiness reports the database itself.
        if let Ok(backlog) = outbox.backlog(Duration::from_secs(1)).await {
            self.outbox_pending.set(backlog.pending);
            self.outbox_oldest_age.set(
                backlog
                    .oldest_pending_age
                    .map_or(0.0, |age| age.as_secs_f64()),
            );
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::warn!("could not encode the metrics");
        }
        text
    }
}

/// Wraps the password hasher to time every hash and verification.
pub struct Metered<H> {
    pub inner: H,
    pub metrics: std::sync::Arc<Metrics>,
}

impl<H: PasswordHasher> PasswordHasher for Metered<H> {
    async fn hash(&self, password: Password) -> anyhow::Result<PasswordHash> {
        let started = Instant::now();
        let hashed = self.inner.hash(password).await;
        self.observe("hash", started, hashed.is_ok());
        hashed
    }

    async fn verify(&self, password: Password, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
        let started = Instant::now();
        let verified = self.inner.verify(password, hash).await;
        self.observe("verify", started, verified.is_ok());
        verified
    }
}

impl<H> Metered<H> {
    fn observe(&self, operation: &'static str, started: Instant, done: bool) {
        // A refused (at capacity) attempt did no work: timing it would drag the figures down.
        if done {
            self.metrics
                .hash_duration
                .get_or_create(&HashLabels { operation })
                .observe(started.elapsed().as_secs_f64());
        }
    }
}
