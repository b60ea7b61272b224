//! End-to-end tests: the real HTTP API, PostgreSQL and RabbitMQ. One binary, so that the
//! helpers compile once; every test has its own database, exchange and queues.
mod helpers;
mod proxy;
mod running;

mod accounts;
mod audit;
mod auth_cache;
mod back_pressure;
mod broker_outage;
mod cli;
mod consumer;
mod contract;
mod health;
mod idempotency;
mod jwks;
mod metrics;
mod openapi;
mod outbox;
mod process;
mod rate_limits;
mod register;
mod routing;
mod startup;
mod tokens;
