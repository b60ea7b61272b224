//! The `registrar` command line: serves the API, relays the outbox and runs the event
//! listeners; its subcommands run parts of that alone, or look after the database and the
//! outbox. `main` is all of the binary, so tests can run the very same thing as a process.
use crate::{Application, Settings, commands, telemetry};
use chrono::DateTime;
use clap::{Parser, Subcommand};
use domain::Timestamp;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Registers users and announces every registration on RabbitMQ. Settings come from the
/// environment (see the README).
#[derive(Parser)]
#[command(name = "registrar", version)]
struct Cli {
    /// A TOML file of settings (`DATABASE_URL = "..."`); the environment overrides it.
    /// Default: the file named by CONFIG_FILE, if any.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, relay the outbox and run the listeners (the default).
    Serve,
    /// Run listeners only, without the API or the relay, to scale them apart.
    Consume {
        /// A listener to run (repeatable); all of them when none is named.
        #[arg(long = "listener", value_name = "NAME")]
        listeners: Vec<String>,
    },
    /// Create the database if needed, apply the migrations, and exit.
    Migrate,
    /// Look into the outbox, or replay its events.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Pending events, the age of the oldest, and how many were published in the last hour.
    Status,
    /// Re-deliver retained events to one listener's queue only (to backfill a new listener).
    Replay {
        /// The listener whose queue receives the events.
        #[arg(long, value_name = "NAME")]
        listener: String,
        /// Only events that occurred at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<Timestamp>,
    },
}

fn parse_time(raw: &str) -> Result<Timestamp, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|time| Timestamp::from_datetime(time.to_utc()))
        .map_err(|error| format!("not an RFC 3339 time such as 2026-12-01T00:00:00Z: {error}"))
}

/// Parses the command line, runs the command, and says how it went.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if !matches!(command, Command::Openapi) {
        match telemetry::LogFormat::from_env() {
            Ok(format) => telemetry::init(format),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(command, cli.config.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole cause chain, no backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config_file: Option<&Path>) -> anyhow::Result<()> {
    let settings = || Settings::load(config_file);
    match command {
        Command::Serve => {
            let app = Application::build(settings()?).await?;
            tracing::info!(address = %app.local_addr(), "registrar is listening; Swagger UI at /docs");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Consume { listeners } => {
            commands::consume(settings()?, &listeners, shutdown_signal()).await
        }
        Command::Migrate => {
            commands::migrate(&settings()?).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::Status,
        } => {
            let status = commands::outbox_status(&settings()?).await?;
            println!("pending: {}", status.pending);
            match status.oldest_pending_age {
                Some(age) => println!("oldest pending: {:.1} s", age.as_secs_f64()),
                None => println!("oldest pending: -"),
            }
            println!("published in the last hour: {}", status.published_last_hour);
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::Replay { listener, since },
        } => {
            let replayed = commands::replay(&settings()?, &listener, since).await?;
            println!("replayed {replayed} events to listener {listener}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", crate::http::openapi_spec());
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
