//! The composition root of registrar: reads settings, builds the adapters, wires them into
//! the use cases, and runs the HTTP server, the outbox relay and the event consumer.
mod app;
mod backoff;
pub mod cli;
pub mod commands;
mod consumer;
pub mod http;
mod listeners;
mod maintenance;
pub mod metrics;
mod relay;
mod settings;
mod supervise;
pub mod telemetry;

pub use app::{Application, ProductionPorts};
pub use consumer::ConsumerStats;
pub use listeners::Listeners;
pub use settings::{Secret, Settings, SettingsError};
