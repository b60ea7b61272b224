//! Logging set-up for the binary.
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The default filter. lapin logs returned messages whole, bodies (emails) included, at
/// `warn`; connection trouble is logged by our own code anyway.
/// PostgreSQL's notices ("relation already exists, skipping" on every start) are not news.
const DEFAULT_FILTER: &str = "info,lapin=error,sqlx::postgres::notice=warn";

/// Human-readable logs on stderr, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]);
/// coloured only on a terminal, so that log files stay plain text.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
