//! Settings, read once from the environment at start-up. Only this crate reads configuration.
use crate::http::RateLimitSettings;
use adapters::{ListenerQueue, QueueType, Topology};
use application::RetryPolicy;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Everything the service can be told. `Default` gives the documented defaults, which point
/// at a local PostgreSQL and RabbitMQ.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub database_max_connections: u32,
    /// How long a request waits for a free database connection before it gets 503.
    pub database_acquire_timeout: Duration,
    /// Password hashes computed at once.
    pub hash_concurrency: usize,
    /// Password hashes that may wait for a free slot; beyond that, 503 at once.
    pub hash_queue_size: usize,
    pub amqp_url: String,
    /// The durable topic exchange events are published to.
    pub amqp_exchange: String,
    /// The routing key every event is published with (its type is a second one).
    pub amqp_routing_key: String,
    /// The seed's queue, read by the `log` listener.
    pub amqp_queue: String,
    /// Every other listener reads `<prefix><listener name>`.
    pub amqp_queue_prefix: String,
    pub amqp_queue_type: QueueType,
    /// Quorum queues: deliveries without an ack before the broker dead-letters a message.
    pub amqp_delivery_limit: u32,
    /// The CloudEvents `source` attribute of published events.
    pub event_source: String,
    pub jwt_secret: Option<Secret>,
    /// An Ed25519 private key (PKCS#8 PEM): sign with EdDSA and publish the public key.
    pub jwt_private_key_file: Option<PathBuf>,
    /// The public key (SPKI PEM) of the key being rotated out; its tokens still verify.
    pub jwt_previous_public_key_file: Option<PathBuf>,
    /// Keys refresh tokens and idempotency fingerprints; derived from the signing key if unset.
    pub refresh_token_secret: Option<Secret>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub refresh_grace: Duration,
    pub http_addr: String,
    /// How long shutdown waits for requests in flight, then again for the relay's batch and
    /// the listeners' messages in hand.
    pub shutdown_timeout: Duration,
    pub consumer_enabled: bool,
    pub consumer_prefetch: u16,
    /// Retry delays and the attempt after which a failing event is dead-lettered.
    pub consumer_retry: RetryPolicy,
    pub outbox_poll_interval: Duration,
    pub outbox_batch_size: usize,
    /// How long published events stay in the outbox (for inspection and replay) before pruning.
    pub outbox_retention: Duration,
    pub rate_limits: RateLimitSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432/registrar".into(),
            database_max_connections: 10,
            database_acquire_timeout: Duration::from_secs(2),
            hash_concurrency: adapters::cores(),
            hash_queue_size: adapters::DEFAULT_WAITING,
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            amqp_exchange: "topic_validateJSON".into(),
            amqp_routing_key: "topic_validateJSON".into(),
            amqp_queue: "topic_validateJSON".into(),
            amqp_queue_prefix: String::new(),
            amqp_queue_type: QueueType::Classic,
            amqp_delivery_limit: 20,
            event_source: "/registrar".into(),
            jwt_secret: None,
            jwt_private_key_file: None,
            jwt_previous_public_key_file: None,
            refresh_token_secret: None,
            jwt_issuer: "registrar".into(),
            jwt_audience: "registrar".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            http_addr: "0.0.0.0:8080".into(),
            shutdown_timeout: Duration::from_secs(10),
            consumer_enabled: true,
            consumer_prefetch: 32,
            consumer_retry: RetryPolicy::default(),
            outbox_poll_interval: Duration::from_secs(1),
            outbox_batch_size: 1000,
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            rate_limits: RateLimitSettings::default(),
        }
    }
}

/// A setting that was present but unusable, or a settings file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("settings file {path} {reason}")]
    File { path: String, reason: String },
}

impl Settings {
    /// Reads every setting from the environment, falling back to the defaults.
    ///
    /// # Errors
    /// Names the first setting whose value cannot be used.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting from the environment, then from `config_file` (or the file named by
    /// `CONFIG_FILE`), then the defaults: the environment wins, so one value can be overridden
    /// without editing the file.
    ///
    /// # Errors
    /// Names the first setting whose value cannot be used, or says what is wrong with the file
    /// (unreadable, not TOML, a key that is no setting).
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let path = config_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CONFIG_FILE").map(PathBuf::from));
        let file = match path {
            Some(path) => read_config_file(&path)?,
            None => HashMap::new(),
        };
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| file.get(name).cloned()))
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let d = Self::default();
        let text = |name: &str, default: String| lookup(name).unwrap_or(default);
        let parsed = |name: &'static str| -> Result<Option<u64>, SettingsError> {
            lookup(name).map(|raw| parse(name, &raw)).transpose()
        };
        let number = |name: &'static str, default: u32| -> Result<u32, SettingsError> {
            Ok(lookup(name)
                .map(|raw| parse(name, &raw))
                .transpose()?
                .unwrap_or(default))
        };
        let settings = Self {
            database_url: text("DATABASE_URL", d.database_url),
            database_max_connections: lookup("DATABASE_MAX_CONNECTIONS")
                .map(|raw| parse("DATABASE_MAX_CONNECTIONS", &raw))
                .transpose()?
                .unwrap_or(d.database_max_connections),
            database_acquire_timeout: parsed("DATABASE_ACQUIRE_TIMEOUT_MS")?
                .map_or(d.database_acquire_timeout, Duration::from_millis),
            hash_concurrency: lookup("HASH_CONCURRENCY")
                .map(|raw| parse("HASH_CONCURRENCY", &raw))
                .transpose()?
                .unwrap_or(d.hash_concurrency),
            hash_queue_size: lookup("HASH_QUEUE_SIZE")
                .map(|raw| parse("HASH_QUEUE_SIZE", &raw))
                .transpose()?
                .unwrap_or(d.hash_queue_size),
            amqp_url: text("AMQP_URL", d.amqp_url),
            amqp_exchange: text("AMQP_EXCHANGE", d.amqp_exchange),
            amqp_routing_key: text("AMQP_ROUTING_KEY", d.amqp_routing_key),
            amqp_queue: text("AMQP_QUEUE", d.amqp_queue),
            amqp_queue_prefix: text("AMQP_QUEUE_PREFIX", d.amqp_queue_prefix),
            amqp_queue_type: match lookup("AMQP_QUEUE_TYPE").as_deref().map(str::trim) {
                None => d.amqp_queue_type,
                Some("classic") => QueueType::Classic,
                Some("quorum") => QueueType::Quorum,
                Some(other) => {
                    return Err(SettingsError::Invalid {
                        name: "AMQP_QUEUE_TYPE",
                        reason: format!("{other:?}: must be classic or quorum"),
                    });
                }
            },
            amqp_delivery_limit: number("AMQP_DELIVERY_LIMIT", d.amqp_delivery_limit)?,
            event_source: text("EVENT_SOURCE", d.event_source),
            jwt_secret: lookup("JWT_SECRET").map(Secret),
            jwt_private_key_file: lookup("JWT_PRIVATE_KEY_FILE").map(PathBuf::from),
            jwt_previous_public_key_file: lookup("JWT_PREVIOUS_PUBLIC_KEY_FILE").map(PathBuf::from),
            refresh_token_secret: lookup("REFRESH_TOKEN_SECRET").map(Secret),
            jwt_issuer: text("JWT_ISSUER", d.jwt_issuer),
            jwt_audience: text("JWT_AUDIENCE", d.jwt_audience),
            access_token_ttl: parsed("ACCESS_TOKEN_TTL_SECONDS")?
                .map_or(d.access_token_ttl, Duration::from_secs),
            refresh_token_ttl: parsed("REFRESH_TOKEN_TTL_SECONDS")?
                .map_or(d.refresh_token_ttl, Duration::from_secs),
            refresh_grace: parsed("REFRESH_TOKEN_GRACE_SECONDS")?
                .map_or(d.refresh_grace, Duration::from_secs),
            http_addr: text("HTTP_ADDR", d.http_addr),
            shutdown_timeout: parsed("SHUTDOWN_TIMEOUT_SECONDS")?
                .map_or(d.shutdown_timeout, Duration::from_secs),
            consumer_enabled: lookup("CONSUMER_ENABLED")
                .map(|raw| parse("CONSUMER_ENABLED", &raw))
                .transpose()?
                .unwrap_or(d.consumer_enabled),
            consumer_prefetch: lookup("CONSUMER_PREFETCH")
                .map(|raw| parse("CONSUMER_PREFETCH", &raw))
                .transpose()?
                .unwrap_or(d.consumer_prefetch),
            consumer_retry: RetryPolicy {
                delays: match lookup("CONSUMER_RETRY_DELAYS_MS") {
                    Some(raw) => raw
                        .split(',')
                        .map(|delay| {
                            parse::<u64>("CONSUMER_RETRY_DELAYS_MS", delay)
                                .map(Duration::from_millis)
                        })
                        .collect::<Result<_, _>>()?,
                    None => d.consumer_retry.delays,
                },
                max_attempts: number("CONSUMER_MAX_ATTEMPTS", d.consumer_retry.max_attempts)?,
            },
            outbox_poll_interval: parsed("OUTBOX_POLL_INTERVAL_MS")?
                .map_or(d.outbox_poll_interval, Duration::from_millis),
            outbox_batch_size: lookup("OUTBOX_BATCH_SIZE")
                .map(|raw| parse("OUTBOX_BATCH_SIZE", &raw))
                .transpose()?
                .unwrap_or(d.outbox_batch_size),
            outbox_retention: parsed("OUTBOX_RETENTION_HOURS")?
                .map_or(d.outbox_retention, |hours| {
                    Duration::from_secs(hours.saturating_mul(3600))
                }),
            rate_limits: RateLimitSettings {
                register_per_ip: number(
                    "RATE_LIMIT_REGISTER_PER_MINUTE",
                    d.rate_limits.register_per_ip,
                )?,
                login_per_ip: number("RATE_LIMIT_LOGIN_PER_MINUTE", d.rate_limits.login_per_ip)?,
                login_per_identifier: number(
                    "RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE",
                    d.rate_limits.login_per_identifier,
                )?,
                refresh_per_ip: number(
                    "RATE_LIMIT_REFRESH_PER_MINUTE",
                    d.rate_limits.refresh_per_ip,
                )?,
                trust_forwarded_for: lookup("TRUST_X_FORWARDED_FOR")
                    .map(|raw| parse("TRUST_X_FORWARDED_FOR", &raw))
                    .transpose()?
                    .unwrap_or(d.rate_limits.trust_forwarded_for),
            },
        };
        settings.check()
    }

    fn check(self) -> Result<Self, SettingsError> {
        let rules: [(&'static str, bool, &str); 30] = [
            (
                "SHUTDOWN_TIMEOUT_SECONDS",
                self.shutdown_timeout <= Duration::from_secs(3600),
                "must be at most 3600",
            ),
            (
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                (10..=60_000).contains(&self.database_acquire_timeout.as_millis()),
                "must be 10 to 60000",
            ),
            (
                "HASH_CONCURRENCY",
                (1..=1024).contains(&self.hash_concurrency),
                "must be 1 to 1024",
            ),
            (
                "HASH_QUEUE_SIZE",
                self.hash_queue_size <= 100_000,
                "must be at most 100000 (0 refuses whatever finds every slot busy)",
            ),
            (
                "AMQP_DELIVERY_LIMIT",
                self.amqp_delivery_limit >= 1,
                "must be at least 1",
            ),
            (
                "EVENT_SOURCE",
                (1..=255).contains(&self.event_source.len())
                    && !self
                        .event_source
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control()),
                "must be a URI reference of 1 to 255 characters without spaces, e.g. /registrar",
            ),
            (
                "CONSUMER_MAX_ATTEMPTS",
                self.consumer_retry.max_attempts >= 1,
                "must be at least 1",
            ),
            (
                "CONSUMER_RETRY_DELAYS_MS",
                !self.consumer_retry.delays.is_empty(),
                "must list at least one delay, e.g. 1000,5000,30000",
            ),
            (
                // The broker refuses a longer per-message expiration, which would stall the
                // queue on the first failing event.
                "CONSUMER_RETRY_DELAYS_MS",
                self.consumer_retry
                    .delays
                    .iter()
                    .all(|delay| *delay <= Duration::from_secs(24 * 3600)),
                "each delay must be at most 86400000 (a day)",
            ),
            (
                "OUTBOX_RETENTION_HOURS",
                self.outbox_retention <= Duration::from_secs(87_600 * 3600),
                "must be at most 87600 (ten years)",
            ),
            (
                // Empty names the default exchange, which takes no publishes by routing key.
                "AMQP_EXCHANGE",
                (1..=255).contains(&self.amqp_exchange.len()),
                "must be 1 to 255 bytes",
            ),
            (
                // Room for the `.retry` and `.dlq` queues named after it; empty would let the
                // broker name it, a new queue at every start.
                "AMQP_QUEUE",
                (1..=200).contains(&self.amqp_queue.len()),
                "must be 1 to 200 bytes",
            ),
            (
                "AMQP_QUEUE_PREFIX",
                self.amqp_queue_prefix.len() <= 100,
                "must be at most 100 bytes",
            ),
            (
                // An AMQP short string: longer, the client cannot even encode the publish.
                "AMQP_ROUTING_KEY",
                self.amqp_routing_key.len() <= 255,
                "must be at most 255 bytes",
            ),
            // The broker reserves `amq.` names: declaring one is refused on every attempt.
            (
                "AMQP_EXCHANGE",
                !self.amqp_exchange.starts_with(RESERVED_PREFIX),
                "must not start with amq. (reserved by the broker)",
            ),
            (
                "AMQP_QUEUE",
                !self.amqp_queue.starts_with(RESERVED_PREFIX),
                "must not start with amq. (reserved by the broker)",
            ),
            (
                "AMQP_QUEUE_PREFIX",
                !self.amqp_queue_prefix.starts_with(RESERVED_PREFIX),
                "must not start with amq. (reserved by the broker)",
            ),
            (
                "REFRESH_TOKEN_SECRET",
                self.refresh_token_secret
                    .as_ref()
                    .is_none_or(|s| s.0.len() >= MIN_SECRET_BYTES),
                "must be at least 32 bytes when set",
            ),
            (
                "JWT_SECRET",
                self.jwt_secret.is_none() || self.jwt_private_key_file.is_none(),
                "set either JWT_SECRET (HS256) or JWT_PRIVATE_KEY_FILE (EdDSA), not both",
            ),
            (
                "JWT_PREVIOUS_PUBLIC_KEY_FILE",
                self.jwt_previous_public_key_file.is_none() || self.jwt_private_key_file.is_some(),
                "only applies with JWT_PRIVATE_KEY_FILE",
            ),
            (
                "JWT_SECRET",
                self.jwt_secret
                    .as_ref()
                    .is_none_or(|s| s.0.len() >= MIN_SECRET_BYTES),
                "must be at least 32 bytes when set (HS256 wants a 256-bit key)",
            ),
            (
                "ACCESS_TOKEN_TTL_SECONDS",
                (1..=24 * 3600).contains(&self.access_token_ttl.as_secs()),
                "must be 1 to 86400",
            ),
            (
                "REFRESH_TOKEN_TTL_SECONDS",
                (1..=365 * 24 * 3600).contains(&self.refresh_token_ttl.as_secs()),
                "must be 1 to 31536000 (a year)",
            ),
            (
                "REFRESH_TOKEN_GRACE_SECONDS",
                self.refresh_grace.as_secs() <= 300,
                "must be at most 300",
            ),
            (
                "CONSUMER_PREFETCH",
                self.consumer_prefetch > 0,
                "must be at least 1 (0 would mean unbounded)",
            ),
            (
                "OUTBOX_BATCH_SIZE",
                (1..=10_000).contains(&self.outbox_batch_size),
                "must be 1 to 10000",
            ),
            (
                "OUTBOX_POLL_INTERVAL_MS",
                self.outbox_poll_interval >= Duration::from_millis(10),
                "must be at least 10 (lower is a busy loop)",
            ),
            (
                "DATABASE_MAX_CONNECTIONS",
                self.database_max_connections >= 2,
                "must be at least 2 (the outbox relay keeps one listening)",
            ),
            (
                "AMQP_URL",
                self.amqp_url.parse::<lapin::uri::AMQPUri>().is_ok(),
                "must be an amqp:// or amqps:// URL",
            ),
            (
                "HTTP_ADDR",
                self.http_addr.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.trim().is_empty() && port.parse::<u16>().is_ok()
                }),
                "must be host:port, e.g. 0.0.0.0:8080",
            ),
        ];
        match rules.into_iter().find(|(_, ok, _)| !ok) {
            Some((name, _, reason)) => Err(SettingsError::Invalid {
                name,
                reason: reason.into(),
            }),
            None => Ok(self),
        }
    }
}

impl Settings {
    /// The queue `listener` reads: the seed's queue for `log`, `<prefix><name>` for the others,
    /// bound with the listener's event-type patterns.
    #[must_use]
    pub fn listener_queue(&self, listener: &str, event_types: &[&str]) -> ListenerQueue {
        let name = if listener == application::LogEvents::NAME {
            self.amqp_queue.clone()
        } else {
            format!("{}{listener}", self.amqp_queue_prefix)
        };
        ListenerQueue {
            name,
            bindings: event_types
                .iter()
                .map(|&pattern| pattern.to_owned())
                .collect(),
            queue_type: self.amqp_queue_type,
            delivery_limit: self.amqp_delivery_limit,
        }
    }

    /// The exchange, its routing key and the given listeners' queues.
    #[must_use]
    pub fn topology(&self, queues: Vec<ListenerQueue>) -> Topology {
        Topology {
            exchange: self.amqp_exchange.clone(),
            routing_key: self.amqp_routing_key.clone(),
            queues,
        }
    }
}

/// Every setting's name: environment variable and config-file key alike.
pub const NAMES: [&str; 36] = [
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_ACQUIRE_TIMEOUT_MS",
    "HASH_CONCURRENCY",
    "HASH_QUEUE_SIZE",
    "AMQP_URL",
    "AMQP_EXCHANGE",
    "AMQP_ROUTING_KEY",
    "AMQP_QUEUE",
    "AMQP_QUEUE_PREFIX",
    "AMQP_QUEUE_TYPE",
    "AMQP_DELIVERY_LIMIT",
    "EVENT_SOURCE",
    "JWT_SECRET",
    "JWT_PRIVATE_KEY_FILE",
    "JWT_PREVIOUS_PUBLIC_KEY_FILE",
    "REFRESH_TOKEN_SECRET",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ACCESS_TOKEN_TTL_SECONDS",
    "REFRESH_TOKEN_TTL_SECONDS",
    "REFRESH_TOKEN_GRACE_SECONDS",
    "HTTP_ADDR",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "CONSUMER_ENABLED",
    "CONSUMER_PREFETCH",
    "CONSUMER_RETRY_DELAYS_MS",
    "CONSUMER_MAX_ATTEMPTS",
    "OUTBOX_POLL_INTERVAL_MS",
    "OUTBOX_BATCH_SIZE",
    "OUTBOX_RETENTION_HOURS",
    "RATE_LIMIT_REGISTER_PER_MINUTE",
    "RATE_LIMIT_LOGIN_PER_MINUTE",
    "RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE",
    "RATE_LIMIT_REFRESH_PER_MINUTE",
    "TRUST_X_FORWARDED_FOR",
];

/// A TOML file of `SETTING = value` lines, with the environment variables' names. Values may
/// be strings, numbers or booleans; `CONSUMER_RETRY_DELAYS_MS` may also be an array.
fn read_config_file(path: &Path) -> Result<HashMap<String, String>, SettingsError> {
    let invalid = |reason: String| SettingsError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid(format!("cannot be read: {error}")))?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        let message = error.message().replace('\n', " ");
        invalid(format!("is not TOML: {message}"))
    })?;
    table
        .into_iter()
        .map(|(key, value)| {
            if !NAMES.contains(&key.as_str()) {
                let why = if ENVIRONMENT_ONLY.contains(&key.as_str()) {
                    "which is read from the environment only (logging starts before the file is read)"
                } else {
                    "which is no setting (names are as in the environment, e.g. DATABASE_URL)"
                };
                return Err(invalid(format!("sets {key:?}, {why}")));
            }
            let value = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        toml::Value::Integer(number) => Ok(number.to_string()),
                        other => Err(invalid(format!(
                            "sets {key} to a list with a {}, which is not a number",
                            other.type_str()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => {
                    return Err(invalid(format!(
                        "sets {key} to a {}, which is not a plain value",
                        other.type_str()
                    )));
                }
            };
            Ok((key, value))
        })
        .collect()
}

/// Read by logging, which starts before any settings file is read.
const ENVIRONMENT_ONLY: [&str; 2] = ["RUST_LOG", "LOG_FORMAT"];
/// Names the broker keeps for itself.
const RESERVED_PREFIX: &str = "amq.";
/// HS256 keys shorter than the hash are weaker than the algorithm (RFC 7518, section 3.2).
const MIN_SECRET_BYTES: usize = 32;

fn parse<T: FromStr>(name: &'static str, raw: &str) -> Result<T, SettingsError>
where
    T::Err: fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|error: T::Err| SettingsError::Invalid {
            name,
            reason: format!("{raw:?}: {error}"),
        })
}

/// A secret setting; its `Debug` output hides the value.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_point_at_the_local_services_and_the_seed_names() {
        let settings = from(&[]).unwrap();
        assert_eq!(
            settings.database_url,
            "postgres://postgres@127.0.0.1:5432/registrar"
        );
        assert_eq!(settings.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(settings.amqp_exchange, "topic_validateJSON");
        assert_eq!(settings.amqp_routing_key, "topic_validateJSON");
        assert_eq!(
            settings.listener_queue("log", &["#"]).name,
            "topic_validateJSON"
        );
        assert_eq!(settings.listener_queue("audit", &["#"]).name, "audit");
        assert_eq!(settings.amqp_queue_type, QueueType::Classic);
        assert_eq!(settings.http_addr, "0.0.0.0:8080");
        assert!(settings.jwt_secret.is_none());
    }

    #[test]
    fn environment_overrides_defaults() {
        let settings = from(&[
            ("HTTP_ADDR", "127.0.0.1:9000"),
            ("AMQP_QUEUE", "q"),
            ("AMQP_QUEUE_PREFIX", "registrar."),
            ("AMQP_QUEUE_TYPE", "quorum"),
            ("CONSUMER_ENABLED", "false"),
        ])
        .unwrap();
        assert_eq!(settings.http_addr, "127.0.0.1:9000");
        assert_eq!(settings.listener_queue("log", &["#"]).name, "q");
        let audit = settings.listener_queue("audit", &["user.*"]);
        assert_eq!(audit.name, "registrar.audit");
        assert_eq!(audit.bindings, ["user.*"]);
        assert_eq!(audit.queue_type, QueueType::Quorum);
        assert!(!settings.consumer_enabled);
    }

    #[test]
    fn an_invalid_setting_is_named_in_one_line() {
        let long_routing_key = "k".repeat(256);
        let error = from(&[("CONSUMER_PREFETCH", "lots")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("setting CONSUMER_PREFETCH is invalid"),
            "{error}"
        );
        assert!(!error.contains('\n'));
        assert!(from(&[("CONSUMER_PREFETCH", "0")]).is_err());
        assert!(from(&[("JWT_SECRET", "")]).is_err());
        assert!(from(&[("JWT_SECRET", "short")]).is_err());
        for (name, value) in [
            ("ACCESS_TOKEN_TTL_SECONDS", "0"),
            ("ACCESS_TOKEN_TTL_SECONDS", "18446744073709551615"),
            ("ACCESS_TOKEN_TTL_SECONDS", "9223372036854775807"),
            ("DATABASE_MAX_CONNECTIONS", "1"),
            ("OUTBOX_POLL_INTERVAL_MS", "0"),
            ("AMQP_URL", "notaurl"),
            ("REFRESH_TOKEN_SECRET", "short"),
            ("AMQP_QUEUE_TYPE", "stream"),
            ("AMQP_DELIVERY_LIMIT", "0"),
            ("EVENT_SOURCE", "not a uri"),
            ("EVENT_SOURCE", ""),
            ("CONSUMER_RETRY_DELAYS_MS", "1000,99999999999999"),
            ("OUTBOX_RETENTION_HOURS", "99999999999"),
            ("AMQP_EXCHANGE", ""),
            ("AMQP_QUEUE", ""),
            ("AMQP_ROUTING_KEY", long_routing_key.as_str()),
            ("AMQP_EXCHANGE", "amq.mine"),
            ("AMQP_QUEUE", "amq.mine"),
            ("AMQP_QUEUE_PREFIX", "amq."),
            ("HTTP_ADDR", "nonsense"),
            ("HTTP_ADDR", "0.0.0.0:99999"),
        ] {
            let error = from(&[(name, value)]).expect_err(name).to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn every_setting_read_is_listed_and_documented() {
        let asked = std::cell::RefCell::new(Vec::new());
        Settings::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        let mut asked = asked.into_inner();
        asked.sort();
        asked.dedup();
        let mut listed: Vec<String> = NAMES.iter().map(|name| (*name).to_owned()).collect();
        listed.sort();
        assert_eq!(asked, listed);
        let readme = include_str!("../../README.md");
        for name in NAMES {
            let quoted = format!("`{name}`");
            assert!(
                readme
                    .lines()
                    .any(|line| line.starts_with("| `") && line.contains(&quoted)),
                "{name} is not in the README's settings table"
            );
        }
    }

    #[test]
    fn a_config_file_fills_in_what_the_environment_leaves_out() {
        let dir = std::env::temp_dir().join(format!("registrar-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("registrar.toml");
        std::fs::write(
            &path,
            "HTTP_ADDR = \"127.0.0.1:9999\"\nCONSUMER_PREFETCH = 7\nCONSUMER_ENABLED = false\nCONSUMER_RETRY_DELAYS_MS = [10, 20]\n",
        )
        .unwrap();
        let file = read_config_file(&path).unwrap();
        let settings = Settings::from_lookup(|name| file.get(name).cloned()).unwrap();
        assert_eq!(settings.http_addr, "127.0.0.1:9999");
        assert_eq!(settings.consumer_prefetch, 7);
        assert!(!settings.consumer_enabled);
        assert_eq!(
            settings.consumer_retry.delays,
            [Duration::from_millis(10), Duration::from_millis(20)]
        );

        std::fs::write(&path, "HTTP_ADRESS = \"x\"\n").unwrap();
        let error = read_config_file(&path).unwrap_err().to_string();
        assert!(
            error.starts_with("settings file ") && error.contains(r#"sets "HTTP_ADRESS""#),
            "{error}"
        );
        std::fs::write(&path, "RUST_LOG = \"debug\"\n").unwrap();
        let error = read_config_file(&path).unwrap_err().to_string();
        assert!(error.contains("environment only"), "{error}");
        std::fs::write(&path, "not toml at all").unwrap();
        let error = read_config_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("not TOML") && !error.contains('\n'),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_example_config_file_is_valid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../registrar.example.toml"
        ));
        let file = read_config_file(path).unwrap();
        assert!(Settings::from_lookup(|name| file.get(name).cloned()).is_ok());
    }

    #[test]
    fn the_jwt_secret_never_shows_in_debug_output() {
        let settings = from(&[("JWT_SECRET", "hunter2-hunter2-hunter2-hunter2-hunter2")]).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
