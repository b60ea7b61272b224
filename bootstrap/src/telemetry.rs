//! Logging set-up for the binary.
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The default filter. lapin logs returned messages whole, bodies (emails) included, at
/// `warn`; connection trouble is logged by our own code anyway.
/// PostgreSQL's notices ("relation already exists, skipping" on every start) are not news.
const DEFAULT_FILTER: &str = "info,lapin=error,sqlx::postgres::notice=warn";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    Text,
    /// One JSON object per line, with the fields of the enclosing spans (request id, trace id).
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    ///
    /// # Errors
    /// One line naming the setting, for any other value.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
            Err(_) | Ok("text") => Ok(Self::Text),
            Ok("json") => Ok(Self::Json),
            Ok(other) => Err(format!(
                "setting LOG_FORMAT is invalid: {other:?}: must be text or json"
            )),
        }
    }
}

/// Logs on stderr, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]); text is coloured only
/// on a terminal, so that log files stay plain.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
    // A panic the service survives (a listener's handler, caught and retried) is logged like
    // everything else, inside its span, instead of as a bare line on stderr between JSON ones.
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(panic = %panic, "panicked");
    }));
}
