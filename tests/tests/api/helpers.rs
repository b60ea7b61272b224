//! `spawn_app()`: a fresh service on port 0 with its own database and broker names, plus
//! helpers to talk to it and to watch what it publishes.
use crate::proxy::TcpProxy;
use application::{EventListener, IncomingEvent, LogEvents};
use bootstrap::http::RateLimitSettings;
use bootstrap::{Application, ConsumerStats, Secret, Settings};
use lapin::options::{
    BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc};

pub const JWT_SECRET: &str = "an end-to-end test secret that is long enough";
const STALE_DATABASE_AGE: Duration = Duration::from_secs(3600);

/// Where the tests find PostgreSQL and RabbitMQ: the servers named by `TEST_POSTGRES_URL` and
/// `TEST_AMQP_URL` when both are set, otherwise containers started for the test.
pub struct Services {
    pub postgres_url: String,
    pub amqp_url: String,
    _containers: Vec<Box<dyn std::any::Any + Send>>,
}

pub async fn services() -> Services {
    match (
        std::env::var("TEST_POSTGRES_URL"),
        std::env::var("TEST_AMQP_URL"),
    ) {
        (Ok(postgres_url), Ok(amqp_url)) => Services {
            postgres_url,
            amqp_url,
            _containers: Vec::new(),
        },
        _ => start_containers().await,
    }
}

async fn start_containers() -> Services {
    use testcontainers_modules::postgres::Postgres;
    use testcontainers_modules::rabbitmq::RabbitMq;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    let hint = "TEST_POSTGRES_URL and TEST_AMQP_URL are not both set, so the tests start \
                containers, which needs a Docker engine";
    let postgres = Postgres::default().start().await.expect(hint);
    let rabbitmq = RabbitMq::default().start().await.expect(hint);
    let pg_port = postgres
        .get_host_port_ipv4(5432)
        .await
        .expect("postgres port is mapped");
    let amqp_port = rabbitmq
        .get_host_port_ipv4(5672)
        .await
        .expect("rabbitmq port is mapped");
    Services {
        postgres_url: format!("postgres://postgres:postgres@127.0.0.1:{pg_port}/postgres"),
        amqp_url: format!("amqp://guest:guest@127.0.0.1:{amqp_port}/%2f"),
        _containers: vec![Box::new(postgres), Box::new(rabbitmq)],
    }
}

/// A listener the tests add to the service (one line of wiring, as the README shows): it
/// records every event its consumer hands it, fails on purpose for [`POISON_USERNAME`] and
/// panics for [`PANIC_USERNAME`].
struct RecordingListener {
    handled: mpsc::UnboundedSender<IncomingEvent>,
    /// Events of users named `held...` wait in the handler until this turns true.
    release_held: tokio::sync::watch::Receiver<bool>,
}

/// A username prefix that makes the test listener hold the event until the test releases it.
pub const HELD_PREFIX: &str = "held";

/// The test listener's name, hence its queue `test.<id>.recorder`.
pub const RECORDER: &str = "recorder";

/// A username that makes the test listener fail, to exercise retries and dead letters.
pub const POISON_USERNAME: &str = "poison";

/// A username that makes the test listener panic.
pub const PANIC_USERNAME: &str = "panicky";

impl EventListener for RecordingListener {
    fn name(&self) -> &'static str {
        RECORDER
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["#"]
    }

    async fn handle(&self, event: &IncomingEvent) -> anyhow::Result<()> {
        if let IncomingEvent::UserRegistered(registered) = event {
            anyhow::ensure!(
                registered.username.as_ref() != POISON_USERNAME,
                "the test listener refuses {POISON_USERNAME}"
            );
            if registered.username.as_ref() == PANIC_USERNAME {
                panic!("the test listener panics on {PANIC_USERNAME}");
            }
            if registered.username.as_ref().starts_with(HELD_PREFIX) {
                let mut release = self.release_held.clone();
                let _ = release.wait_for(|released| *released).await;
            }
        }
        let _ = self.handled.send(event.clone());
        LogEvents.handle(event).await
    }
}

type Stopper = (
    tokio::sync::oneshot::Sender<()>,
    std::sync::mpsc::Receiver<()>,
);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub settings: Settings,
    /// What the consumers of the test listener, of `audit` and of `log` did.
    pub recorder_stats: Arc<ConsumerStats>,
    pub audit_stats: Arc<ConsumerStats>,
    pub log_stats: Arc<ConsumerStats>,
    /// A channel on the real broker (never through the proxy), for the test's own use.
    pub channel: Channel,
    pub proxy: Option<TcpProxy>,
    observer_queue: String,
    /// Every listener's queue, deleted (with its retry and dead-letter queues) at the end.
    queues: Vec<String>,
    /// Lets the test listener finish the events it holds.
    pub release_held: tokio::sync::watch::Sender<bool>,
    /// Other instances of the service: how to stop them, and word that they have.
    siblings: std::sync::Mutex<Vec<Stopper>>,
    /// Queues a test declared for itself, deleted with the rest.
    extra_queues: std::sync::Mutex<Vec<String>>,
    database: String,
    handled: Mutex<mpsc::UnboundedReceiver<IncomingEvent>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: std::sync::mpsc::Receiver<()>,
    _connection: Connection,
    _services: Services,
}

/// The options a test can change before the service starts.
#[derive(Default)]
pub struct Options {
    /// Route the service's AMQP traffic through a proxy the test can cut.
    pub broker_behind_proxy: bool,
    /// Overrides the default 10 s refresh-token grace window.
    pub refresh_grace: Option<Duration>,
    /// Rate limits; off unless a test is about them, since all tests come from one IP.
    pub rate_limits: Option<RateLimitSettings>,
    /// Sign tokens with this Ed25519 private key (PKCS#8 PEM) instead of the HS256 secret.
    pub ed25519_private_key_pem: Option<String>,
    /// Overrides the consumers' retry delays and attempts.
    pub consumer_retry: Option<application::RetryPolicy>,
    /// Overrides the relay's fallback poll (default 1 s).
    pub outbox_poll_interval: Option<Duration>,
    /// Start no consumers (the relay still runs), as an API-only instance.
    pub consumers_disabled: bool,
    /// Prepare everything (database, names, observer) but run no service in the test: for
    /// tests that run the binary as a process.
    pub not_running: bool,
    /// Changes any other setting, last.
    pub adjust: Option<fn(&mut Settings)>,
    /// Overrides the consumers' prefetch (default 32).
    pub consumer_prefetch: Option<u16>,
    /// Overrides the listeners' queue type (default classic).
    pub queue_type: Option<adapters::QueueType>,
}

/// A retry policy that gives up quickly: one retry after 20 ms, then the dead-letter queue.
pub fn two_quick_attempts() -> application::RetryPolicy {
    application::RetryPolicy {
        delays: vec![Duration::from_millis(20)],
        max_attempts: 2,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let services = services().await;
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = database_name(&unique);
    drop_stale_databases(&services.postgres_url).await;

    let proxy = if options.broker_behind_proxy {
        Some(TcpProxy::start(address_of(&services.amqp_url)).await)
    } else {
        None
    };
    let amqp_url = match &proxy {
        Some(proxy) => through(&services.amqp_url, proxy),
        None => services.amqp_url.clone(),
    };
    let defaults = Settings::default();
    let mut settings = Settings {
        database_url: with_database(&services.postgres_url, &database),
        amqp_url,
        amqp_exchange: format!("test.{unique}.topic_validateJSON"),
        amqp_queue: format!("test.{unique}.topic_validateJSON"),
        amqp_queue_prefix: format!("test.{unique}."),
        amqp_queue_type: options.queue_type.unwrap_or_default(),
        consumer_prefetch: options
            .consumer_prefetch
            .unwrap_or(defaults.consumer_prefetch),
        consumer_retry: options
            .consumer_retry
            .unwrap_or(defaults.consumer_retry.clone()),
        outbox_poll_interval: options
            .outbox_poll_interval
            .unwrap_or(defaults.outbox_poll_interval),
        http_addr: "127.0.0.1:0".into(),
        consumer_enabled: !options.consumers_disabled,
        refresh_grace: options.refresh_grace.unwrap_or(defaults.refresh_grace),
        rate_limits: options.rate_limits.unwrap_or_else(RateLimitSettings::off),
        jwt_secret: options
            .ed25519_private_key_pem
            .is_none()
            .then(|| Secret(JWT_SECRET.into())),
        jwt_private_key_file: options.ed25519_private_key_pem.map(|pem| {
            let path = std::env::temp_dir().join(format!("registrar-test-{unique}.pem"));
            std::fs::write(&path, pem).expect("write the test's key file");
            path
        }),
        ..defaults
    };

    if let Some(adjust) = options.adjust {
        adjust(&mut settings);
    }

    // The observer queue is bound before the service starts, so it sees every event.
    let connection = Connection::connect(&services.amqp_url, ConnectionProperties::default())
        .await
        .expect("the test connects to RabbitMQ");
    let channel = connection.create_channel().await.expect("open channel");
    let observer_queue = format!("test.{unique}.observer");
    observe(&channel, &settings, &observer_queue).await;
    let (sender, handled) = mpsc::unbounded_channel();
    let (release_held, held) = tokio::sync::watch::channel(false);
    let app = Application::build_with_listeners(settings.clone(), |listeners| {
        listeners.add(RecordingListener {
            handled: sender,
            release_held: held,
        });
    })
    .await
    .expect("the service starts");
    // The service declares the same when it connects; declaring it before it runs means
    // nothing the test publishes can be dropped for want of a bound queue.
    adapters::declare_topology(&channel, app.topology())
        .await
        .expect("declare the service's topology");
    let queues = app
        .topology()
        .queues
        .iter()
        .map(|queue| queue.name.clone())
        .collect();
    let address = format!("http://{}", app.local_addr());
    let stats = |name| app.listener_stats(name).expect("the listener runs");
    let (recorder_stats, audit_stats, log_stats) = (stats(RECORDER), stats("audit"), stats("log"));
    let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let (stopped_sender, stopped) = std::sync::mpsc::channel::<()>();
    if options.not_running {
        // Built (database migrated, port bound) and dropped: the test runs its own process.
        drop(app);
        let _ = stopped_sender.send(());
    } else {
        tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async {
                    let _ = stop_requested.await;
                })
                .await;
            let _ = stopped_sender.send(());
        });
    }

    let db = PgPool::connect(&settings.database_url)
        .await
        .expect("the test connects to its database");
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        settings,
        recorder_stats,
        audit_stats,
        log_stats,
        channel,
        proxy,
        observer_queue,
        queues,
        release_held,
        extra_queues: std::sync::Mutex::default(),
        siblings: std::sync::Mutex::default(),
        database,
        handled: Mutex::new(handled),
        stop: Some(stop),
        stopped,
        _connection: connection,
        _services: services,
    }
}

/// Declares `queue`, exclusive to `channel`'s connection, bound to every event the service
/// publishes.
pub async fn observe(channel: &Channel, settings: &Settings, queue: &str) {
    adapters::declare_exchange(channel, &settings.amqp_exchange)
        .await
        .expect("declare the test's exchange");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the observer queue");
    channel
        .queue_bind(
            queue.into(),
            settings.amqp_exchange.as_str().into(),
            settings.amqp_routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind the observer queue");
}

/// A message as the broker delivered it to the observer queue.
pub struct Published {
    pub body: String,
    pub properties: BasicProperties,
}

impl Published {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("published bodies are JSON")
    }

    pub fn message_id(&self) -> String {
        self.properties
            .message_id()
            .as_ref()
            .expect("message_id is set")
            .to_string()
    }
}

impl TestApp {
    /// A second instance of the service sharing this one's database and broker, as behind a
    /// load balancer: its own relay, and consumers for the built-in listeners competing with
    /// this one's. Its address is returned; it stops with the test.
    pub async fn spawn_sibling(&self) -> String {
        self.spawn_sibling_with(self.settings.clone()).await
    }

    /// As [`TestApp::spawn_sibling`], with settings of its own.
    pub async fn spawn_sibling_with(&self, settings: Settings) -> String {
        let sibling = Application::build(settings)
            .await
            .expect("the sibling starts");
        let address = format!("http://{}", sibling.local_addr());
        let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
        let (stopped_sender, stopped) = std::sync::mpsc::channel::<()>();
        tokio::spawn(async move {
            let _ = sibling
                .run_until_stopped(async {
                    let _ = stop_requested.await;
                })
                .await;
            let _ = stopped_sender.send(());
        });
        self.siblings
            .lock()
            .expect("not poisoned")
            .push((stop, stopped));
        address
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the service answers")
    }

    /// Registers `tag` (as email `tag@example.com`, username `tag`) and returns the 201 body.
    pub async fn registered(&self, tag: &str) -> Value {
        let response = self.register(&valid_registration(tag)).await;
        assert_eq!(response.status(), 201, "registering {tag}");
        response.json().await.expect("a JSON body")
    }

    pub async fn login(&self, email_or_username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/auth/login",
            &serde_json::json!({"emailOrUsername": email_or_username, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json(
            "/auth/refresh",
            &serde_json::json!({"refreshToken": refresh_token}),
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.me_at(&self.address, access_token).await
    }

    pub async fn me_at(&self, address: &str, access_token: &str) -> reqwest::Response {
        self.client
            .get(format!("{address}/auth/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("the service answers")
    }

    pub async fn logout(&self, access_token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/logout"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("the service answers")
    }

    pub async fn register(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/auth/register", self.address))
            .json(body)
            .send()
            .await
            .expect("the service answers")
    }

    /// `GET path`, expecting a JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("the service answers");
        response.json().await.expect("a JSON body")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Publishes a message of the test's own to the service's exchange, as another service
    /// would, and waits for the broker's confirm.
    pub async fn publish_to_exchange(&self, body: &[u8], properties: BasicProperties) {
        self.channel
            .basic_publish(
                self.settings.amqp_exchange.as_str().into(),
                self.settings.amqp_routing_key.as_str().into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("the broker confirms");
    }

    /// Declares a listener queue `test.<id>.<name>` bound with `patterns`, as the service
    /// does for a listener, without a consumer; returns its name.
    pub async fn declare_listener_queue(
        &self,
        name: &str,
        patterns: &[&str],
        queue_type: adapters::QueueType,
        delivery_limit: u32,
    ) -> String {
        let queue = adapters::ListenerQueue {
            queue_type,
            delivery_limit,
            ..self.settings.listener_queue(name, patterns)
        };
        self.extra_queues
            .lock()
            .expect("not poisoned")
            .push(queue.name.clone());
        adapters::declare_listener_queue(&self.channel, &self.settings.amqp_exchange, &queue)
            .await
            .expect("declare the queue");
        queue.name
    }

    /// Takes the next message from `queue` without waiting, acknowledged.
    pub async fn take(&self, queue: &str) -> Option<lapin::message::BasicGetMessage> {
        self.channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
    }

    /// A new channel on the test's own connection.
    pub async fn fresh_channel(&self) -> Channel {
        self._connection
            .create_channel()
            .await
            .expect("open a channel")
    }

    /// Messages waiting in `queue` that no consumer holds.
    pub async fn ready_in(&self, queue: &str) -> u32 {
        self.fresh_channel()
            .await
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the queue exists")
            .message_count()
    }

    /// The queue of the named listener.
    pub fn queue_of(&self, listener: &str) -> String {
        self.settings.listener_queue(listener, &[]).name
    }

    /// Deletes the queues only tests read (the recorder's and the observer), so that the
    /// broker routes each event to the service's own queues alone, as in production.
    #[allow(dead_code, reason = "used by the throughput benchmark only")]
    pub async fn remove_test_queues(&self) {
        for queue in [self.queue_of(RECORDER), self.observer_queue.clone()] {
            self.channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete a test queue");
        }
    }

    /// The next message published to the test's exchange, waiting up to `within`.
    pub async fn next_published(&self, within: Duration) -> Option<Published> {
        poll_until(within, || async {
            let message = self
                .channel
                .basic_get(
                    self.observer_queue.as_str().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .expect("basic.get on the observer queue");
            message.map(|message| Published {
                body: String::from_utf8(message.delivery.data.clone()).expect("bodies are UTF-8"),
                properties: message.delivery.properties.clone(),
            })
        })
        .await
    }

    /// Every message published so far and not yet taken, without waiting for more.
    pub async fn drain_published(&self) -> Vec<Published> {
        let mut all = Vec::new();
        while let Some(message) = self.next_published(Duration::ZERO).await {
            all.push(message);
        }
        all
    }

    /// The next event the service's own consumer handled, waiting up to `within`.
    pub async fn next_handled(&self, within: Duration) -> Option<IncomingEvent> {
        tokio::time::timeout(within, self.handled.lock().await.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits until the test listener has dead-lettered `count` events; returns its stats.
    pub async fn wait_for_recorder_dead_letters(&self, count: u64) -> Arc<ConsumerStats> {
        let stats = self.recorder_stats.clone();
        let settled = poll_until(Duration::from_secs(15), || async {
            (stats.dead_lettered() == count).then_some(())
        })
        .await;
        assert!(
            settled.is_some(),
            "retried {} dead-lettered {}",
            stats.retried(),
            stats.dead_lettered()
        );
        stats
    }

    pub async fn pending_outbox_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.db)
            .await
            .expect("count pending events")
    }

    /// Waits until the relay has confirmed every event in the outbox.
    pub async fn wait_for_empty_outbox(&self, within: Duration) {
        let drained = poll_until(within, || async {
            (self.pending_outbox_events().await == 0).then_some(())
        })
        .await;
        assert!(
            drained.is_some(),
            "the outbox still has {} pending events",
            self.pending_outbox_events().await
        );
    }

    /// Puts `count` pending `user.registered` events straight into the outbox, as if that
    /// many registrations had committed while nothing was published.
    pub async fn insert_pending_events(&self, count: i64) {
        sqlx::query(
            "INSERT INTO outbox (id, event_type, payload, occurred_at)
             SELECT gen_random_uuid(), 'user.registered',
                    json_build_object('event', 'user.registered',
                                      'data', json_build_object('id', gen_random_uuid(),
                                                                'email', 'backlog' || n || '@example.com',
                                                                'username', 'backlog' || n,
                                                                'createdAt', '2026-12-03T12:00:00.000Z'),
                                      'timestamp', '2026-12-03T12:00:00.000Z'),
                    now()
             FROM generate_series(1, $1) AS n",
        )
        .bind(count)
        .execute(&self.db)
        .await
        .expect("insert a backlog");
    }

    pub async fn audit_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&self.db)
            .await
            .expect("count audit rows")
    }

    /// Waits until the audit log has `expected` rows, and fails if it then has more.
    pub async fn wait_for_audit_rows(&self, expected: i64, within: Duration) {
        let reached = poll_until(within, || async {
            (self.audit_rows().await >= expected).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "expected {expected} audit rows, found {}",
            self.audit_rows().await
        );
        assert_eq!(self.audit_rows().await, expected, "one audit row per event");
    }

    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.db)
            .await
            .expect("count users")
    }
}

/// Leaves the shared servers as the test found them: its database, exchange and queue go.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(key_file) = &self.settings.jwt_private_key_file {
            let _ = std::fs::remove_file(key_file);
        }
        if !self._services._containers.is_empty() {
            return; // the containers go, and everything in them
        }
        // Stop the service first, or its consumer would declare the queue again. On a
        // single-threaded test runtime it cannot run while this drop does, so there is
        // nothing to wait for.
        let siblings =
            std::mem::take(&mut *self.siblings.lock().unwrap_or_else(|e| e.into_inner()));
        let mut waiting = Vec::new();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            waiting.push(&self.stopped);
        }
        let (stops, stopped): (Vec<_>, Vec<_>) = siblings.into_iter().unzip();
        for stop in stops {
            let _ = stop.send(());
        }
        waiting.extend(stopped.iter());
        let multi_threaded = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        if multi_threaded {
            for stopped in waiting {
                let _ = stopped.recv_timeout(Duration::from_secs(5));
            }
        }
        let cleanup = Cleanup {
            postgres_url: self._services.postgres_url.clone(),
            amqp_url: self._services.amqp_url.clone(),
            database: self.database.clone(),
            exchange: self.settings.amqp_exchange.clone(),
            queues: self
                .queues
                .iter()
                .cloned()
                .chain(std::mem::take(
                    &mut *self.extra_queues.lock().unwrap_or_else(|e| e.into_inner()),
                ))
                .flat_map(|queue| {
                    [
                        adapters::retry_queue(&queue),
                        adapters::dead_letter_queue(&queue),
                        queue,
                    ]
                })
                .collect(),
        };
        // The test's runtime is busy running this drop: clean up on a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                // The timer must be made inside the runtime, hence the async block.
                let bounded =
                    async { tokio::time::timeout(Duration::from_secs(10), cleanup.run()).await };
                let _ = runtime.block_on(bounded);
            }
        })
        .join();
    }
}

struct Cleanup {
    postgres_url: String,
    amqp_url: String,
    database: String,
    exchange: String,
    queues: Vec<String>,
}

impl Cleanup {
    async fn run(self) {
        if let Ok(connection) =
            Connection::connect(&self.amqp_url, ConnectionProperties::default()).await
        {
            if let Ok(channel) = connection.create_channel().await {
                for queue in &self.queues {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                let _ = channel
                    .exchange_delete(
                        self.exchange.as_str().into(),
                        ExchangeDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = connection.close(200, "test over".into()).await;
        }
        if let Ok(pool) = PgPool::connect(&self.postgres_url).await {
            let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
            let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await;
        }
    }
}

/// Polls `probe` until it yields a value or `within` has passed; tried at least once.
pub async fn poll_until<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn valid_registration(tag: &str) -> Value {
    serde_json::json!({
        "email": format!("{tag}@example.com"),
        "username": tag,
        "password": "correct horse battery staple",
    })
}

/// `registrar_test_<unix seconds>_<unique>`: the time lets later runs drop what a crashed
/// run left behind.
pub fn database_name(unique: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    format!("registrar_test_{now}_{unique}")
}

async fn drop_stale_databases(server_url: &str) {
    let Ok(pool) = PgPool::connect(server_url).await else {
        return;
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'registrar\\_test\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for name in names {
        let created: Option<u64> = name.split('_').nth(2).and_then(|secs| secs.parse().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_DATABASE_AGE.as_secs())
        {
            let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await;
        }
    }
}

pub fn with_database(server_url: &str, database: &str) -> String {
    let mut url = url::Url::parse(server_url).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// The `host:port` of a service's URL.
pub fn address_of(service_url: &str) -> String {
    let url = url::Url::parse(service_url).expect("a service URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5672)
    )
}

/// The service's URL, pointed at `proxy` instead.
pub fn through(service_url: &str, proxy: &TcpProxy) -> String {
    let mut url = url::Url::parse(service_url).expect("a service URL");
    url.set_host(Some("127.0.0.1")).expect("a host can be set");
    url.set_port(Some(proxy.port())).expect("a port can be set");
    url.to_string()
}
