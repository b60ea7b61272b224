//! Wiring: adapters into use cases, use cases into the HTTP server, relay and consumer.
use crate::consumer::ConsumerStats;
use crate::http::{
    self, AccountService, AuthApi, HealthApi, MetricsSource, Probes, RateLimits, WellKnownApi,
};
use crate::listeners::Listeners;
use crate::maintenance::{Expiring, run_maintenance};
use crate::metrics::{Metered, Metrics};
use crate::relay::run_relay;
use crate::settings::Settings;
use crate::supervise::spawn_vital;
use adapters::{
    Argon2PasswordHasher, AuthCache, BrokerState, HmacRefreshTokens, JwtSettings, JwtTokenIssuer,
    OutboxWakeups, PostgresIdempotencyStore, PostgresOutbox, PostgresSessionStore,
    PostgresUserRepository, RabbitMqEventBus, Setup, SigningKey, SystemClock, Topology, UuidV7Ids,
    connect_database,
};
use anyhow::Context;
use application::{
    Accounts, AuthError, LogInCommand, LogInError, PortSet, Ports, RefreshError, RefreshToken,
    RegisterUserCommand, RegisterUserError, Registration, RelayOutbox, SessionPolicy, SignedIn,
};
use domain::User;
use poem::Server;
use poem::endpoint::BoxEndpoint;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use rand::RngCore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The production adapters behind the account use cases.
pub struct ProductionPorts;

impl Ports for ProductionPorts {
    type Users = PostgresUserRepository;
    type Hasher = Metered<Argon2PasswordHasher>;
    type Tokens = JwtTokenIssuer;
    type Sessions = PostgresSessionStore;
    type RefreshTokens = HmacRefreshTokens;
    type Idempotency = PostgresIdempotencyStore;
    type Clock = SystemClock;
    type Ids = UuidV7Ids;
}

impl<P: Ports> AccountService for Accounts<P> {
    fn register(
        &self,
        command: RegisterUserCommand,
    ) -> impl Future<Output = Result<Registration, RegisterUserError>> + Send {
        Accounts::register(self, command)
    }

    fn log_in(
        &self,
        command: LogInCommand,
    ) -> impl Future<Output = Result<SignedIn, LogInError>> + Send {
        Accounts::log_in(self, command)
    }

    fn refresh(
        &self,
        refresh_token: String,
    ) -> impl Future<Output = Result<SignedIn, RefreshError>> + Send {
        Accounts::refresh(self, RefreshToken::new(refresh_token))
    }

    async fn current_user(&self, access_token: &str) -> Result<User, AuthError> {
        self.authenticate(access_token).await.map(|(user, _)| user)
    }

    fn log_out(&self, access_token: &str) -> impl Future<Output = Result<(), AuthError>> + Send {
        Accounts::log_out(self, access_token)
    }
}

const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// A built service, bound to its port and connected to its database, not yet running.
pub struct Application {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    routes: BoxEndpoint<'static>,
    relay: RelayOutbox<PostgresOutbox, RabbitMqEventBus>,
    wakeups: OutboxWakeups,
    expiring: Expiring,
    limits: Arc<RateLimits>,
    listeners: Listeners,
    topology: Topology,
    metrics: Arc<Metrics>,
    /// Live sessions and their users, for checking access tokens without a query.
    auth_cache: (Arc<AuthCache>, sqlx::PgPool),
    consumer_enabled: bool,
    poll_interval: Duration,
    shutdown_timeout: Duration,
}

impl Application {
    /// Builds the service with the built-in event listeners.
    ///
    /// # Errors
    /// When PostgreSQL is unreachable, a migration fails or the HTTP address cannot be bound.
    /// RabbitMQ being down is not an error: events wait in the outbox.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_listeners(settings, |_| {}).await
    }

    /// Builds the service with the built-in listeners and those `add` adds.
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_listeners(
        settings: Settings,
        add: impl FnOnce(&mut Listeners),
    ) -> anyhow::Result<Self> {
        let pool = database(&settings, settings.database_max_connections, Setup::Prepare).await?;
        let metrics = Arc::new(Metrics::new());
        let (signing_key, key_material) = signing_key(&settings)?;
        let tokens = token_issuer(&settings, signing_key)?;
        let well_known = WellKnownApi::new(tokens.public_keys());
        match tokens.public_keys().first() {
            Some(key) => tracing::info!(kid = %key.kid, "signing access tokens with EdDSA"),
            None => tracing::info!("signing access tokens with HS256"),
        }
        let auth_cache = AuthCache::new();
        let accounts: Accounts<ProductionPorts> = Accounts::new(
            PortSet {
                users: PostgresUserRepository::with_cache(pool.clone(), auth_cache.clone()),
                hasher: Metered {
                    inner: Argon2PasswordHasher::new(
                        settings.hash_concurrency,
                        settings.hash_queue_size,
                    ),
                    metrics: metrics.clone(),
                },
                tokens,
                sessions: PostgresSessionStore::with_cache(pool.clone(), auth_cache.clone()),
                refresh_tokens: HmacRefreshTokens::derived_from(
                    settings
                        .refresh_token_secret
                        .as_ref()
                        .map_or(&key_material[..], |secret| secret.0.as_bytes()),
                ),
                idempotency: PostgresIdempotencyStore::new(pool.clone()),
                clock: SystemClock,
                ids: UuidV7Ids,
            },
            SessionPolicy {
                refresh_token_ttl: settings.refresh_token_ttl,
                refresh_grace: settings.refresh_grace,
            },
        );
        let acceptor = TcpListener::bind(settings.http_addr.clone())
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on HTTP_ADDR {}", settings.http_addr))?;
        let local_addr = *acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr())
            .context("the HTTP listener has no socket address")?;

        let mut listeners = Listeners::of(&settings, &pool, metrics.clone())?;
        add(&mut listeners);
        listeners.check()?;
        let limits = Arc::new(RateLimits::new(settings.rate_limits));
        let broker = BrokerState::default();
        let health = HealthApi::new(Probes {
            pool: pool.clone(),
            outbox: relay_outbox(&pool),
            broker: broker.clone(),
        });
        Ok(Self {
            acceptor,
            local_addr,
            routes: http::routes(
                AuthApi::new(accounts, limits.clone()),
                well_known,
                health,
                MetricsSource {
                    metrics: metrics.clone(),
                    outbox: relay_outbox(&pool),
                    broker: broker.clone(),
                    auth_cache: auth_cache.clone(),
                },
            ),
            metrics,
            auth_cache: (auth_cache, pool.clone()),
            limits,
            // Every listener's queue is declared before the first publish, even where this
            // instance runs none of them: no event misses a queue that exists.
            relay: RelayOutbox::new(
                relay_outbox(&pool),
                event_bus(&settings, listeners.queues(), broker.clone()),
                settings.outbox_batch_size,
            ),
            wakeups: OutboxWakeups::new(pool.clone()),
            expiring: Expiring {
                sessions: PostgresSessionStore::new(pool.clone()),
                idempotency: PostgresIdempotencyStore::new(pool.clone()),
                outbox: PostgresOutbox::new(pool, Duration::from_secs(60)),
                outbox_retention: settings.outbox_retention,
            },
            topology: settings.topology(listeners.queues()),
            listeners,
            consumer_enabled: settings.consumer_enabled,
            poll_interval: settings.outbox_poll_interval,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    /// The address the HTTP server is bound to (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The exchange and every listener's queues, as the service declares them.
    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// What the named listener's consumer has done so far.
    #[must_use]
    pub fn listener_stats(&self, name: &str) -> Option<Arc<ConsumerStats>> {
        self.listeners.stats(name)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to a grace period) and stops the relay and the consumer.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let failed = CancellationToken::new();
        let relay = spawn_vital(
            "outbox relay",
            run_relay(
                self.relay,
                self.wakeups,
                self.poll_interval,
                self.metrics.clone(),
                stop.clone(),
            ),
            &stop,
            &failed,
        );
        let consumers = if self.consumer_enabled {
            self.listeners.start(&stop, &failed)
        } else {
            Vec::new()
        };
        // Not vital: without it every token is checked in the database, as before the cache.
        let (auth_cache, pool) = self.auth_cache;
        let auth_cache =
            tokio::spawn(auth_cache.follow_changes(pool, stop.clone().cancelled_owned()));
        let maintenance = spawn_vital(
            "maintenance",
            run_maintenance(self.expiring, self.limits, stop.clone()),
            &stop,
            &failed,
        );
        let stopping = async {
            tokio::select! {
                () = shutdown => {}
                () = failed.cancelled() => {}
            }
        };
        let served = Server::new_with_acceptor(self.acceptor)
            // Idle keep-alive connections are closed, so that they cannot pile up.
            .idle_timeout(IDLE_CONNECTION_TIMEOUT)
            .run_with_graceful_shutdown(self.routes, stopping, Some(self.shutdown_timeout))
            .await;
        // No request is in flight any more: the relay finishes its batch and the listeners
        // the messages in hand, then each closes its connection.
        stop.cancel();
        let background = async {
            let _ = relay.await;
            let _ = maintenance.await;
            let _ = auth_cache.await;
            for consumer in consumers {
                let _ = consumer.await;
            }
        };
        if tokio::time::timeout(self.shutdown_timeout, background)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?self.shutdown_timeout,
                "background tasks did not stop in time; exiting anyway (unacked messages are redelivered, unmarked events republished)"
            );
        }
        tracing::info!("stopped");
        anyhow::ensure!(
            !failed.is_cancelled(),
            "a background task failed (see the log above); stopped so that a supervisor restarts the service"
        );
        served.context("HTTP server failed")
    }
}

/// The settings' database, with at most `max_connections` (a command needs fewer than the
/// service).
pub(crate) async fn database(
    settings: &Settings,
    max_connections: u32,
    setup: Setup,
) -> anyhow::Result<sqlx::PgPool> {
    connect_database(
        &settings.database_url,
        max_connections,
        settings.database_acquire_timeout,
        setup,
    )
    .await
}

/// The outbox as the relay uses it. The lease only needs to outlast one batch's publish
/// (bounded by the broker timeout).
pub(crate) fn relay_outbox(pool: &sqlx::PgPool) -> PostgresOutbox {
    PostgresOutbox::new(pool.clone(), Duration::from_secs(60))
}

pub(crate) fn event_bus(
    settings: &Settings,
    queues: Vec<adapters::ListenerQueue>,
    broker: BrokerState,
) -> RabbitMqEventBus {
    RabbitMqEventBus::new(
        settings.amqp_url.clone(),
        settings.topology(queues),
        settings.event_source.clone(),
        broker,
    )
}

/// The token signing key, and the secret material the refresh-token key is derived from.
fn signing_key(settings: &Settings) -> anyhow::Result<(SigningKey, Vec<u8>)> {
    if let Some(path) = &settings.jwt_private_key_file {
        let read = |name: &str, path: &std::path::Path| {
            std::fs::read(path).with_context(|| format!("cannot read {name} {}", path.display()))
        };
        let private_pem = read("JWT_PRIVATE_KEY_FILE", path)?;
        let previous = match &settings.jwt_previous_public_key_file {
            Some(path) => vec![read("JWT_PREVIOUS_PUBLIC_KEY_FILE", path)?],
            None => Vec::new(),
        };
        return Ok((
            SigningKey::Ed25519 {
                private_pem: private_pem.clone(),
                previous,
            },
            private_pem,
        ));
    }
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.0.as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "neither JWT_SECRET nor JWT_PRIVATE_KEY_FILE is set: using a random secret, so tokens will not survive a restart or work across instances"
            );
            let mut secret = vec![0; 32];
            rand::rng().fill_bytes(&mut secret);
            secret
        }
    };
    Ok((SigningKey::Hs256(secret.clone()), secret))
}

fn token_issuer(settings: &Settings, key: SigningKey) -> anyhow::Result<JwtTokenIssuer> {
    JwtTokenIssuer::new(JwtSettings {
        key,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        access_token_ttl: settings.access_token_ttl,
    })
    .context("JWT_PRIVATE_KEY_FILE or JWT_PREVIOUS_PUBLIC_KEY_FILE is not a usable Ed25519 key")
}
