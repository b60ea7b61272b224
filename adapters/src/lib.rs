//! Outbound adapters: the technologies behind the application's ports.
//!
//! PostgreSQL (sqlx) stores users and the outbox, RabbitMQ (lapin) carries events, argon2
//! hashes passwords, jsonwebtoken signs access tokens.
mod argon2_hasher;
mod auth_cache;
mod jwt;
mod postgres;
mod postgres_audit;
mod postgres_idempotency;
mod postgres_outbox;
mod postgres_sessions;
mod postgres_users;
mod rabbitmq;
mod refresh_tokens;
mod system;

pub use argon2_hasher::{Argon2PasswordHasher, DEFAULT_WAITING, cores};
pub use auth_cache::{AUTH_CACHE_APPLICATION_NAME, AUTH_CACHE_CHANNEL, AuthCache};
pub use jwt::{AccessClaims, JwtSettings, JwtTokenIssuer, PublicJwk, SigningKey};
pub use postgres::{OUTBOX_CHANNEL, Setup, connect_database, database_ready};
pub use postgres_audit::PostgresAuditLog;
pub use postgres_idempotency::PostgresIdempotencyStore;
pub use postgres_outbox::{OutboxBacklog, OutboxStatus, OutboxWakeups, PostgresOutbox};
pub use postgres_sessions::PostgresSessionStore;
pub use postgres_users::PostgresUserRepository;
pub use rabbitmq::{
    BrokerState, ListenerQueue, QueueType, REQUEST_ID_HEADER, RabbitMqEventBus, TRACEPARENT_HEADER,
    Topology, connect_broker, dead_letter_queue, declare_exchange, declare_listener_queue,
    declare_topology, retry_queue,
};
pub use refresh_tokens::HmacRefreshTokens;
pub use system::{SystemClock, UuidV7Ids};
