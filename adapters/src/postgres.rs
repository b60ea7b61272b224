//! The PostgreSQL connection: creating the database when missing, pooling, migrations.
use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The NOTIFY channel on which a committed registration wakes the outbox relay.
pub const OUTBOX_CHANNEL: &str = "registrar_outbox";

/// The migrations in `adapters/migrations`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Whether the database answers and has every migration this build knows applied.
///
/// # Errors
/// Says which of the two it is not.
pub async fn database_ready(pool: &PgPool) -> anyhow::Result<()> {
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(flatten)
        .context("cannot query the database")?;
    let known = MIGRATOR.iter().count();
    anyhow::ensure!(
        usize::try_from(applied).unwrap_or_default() >= known,
        "{applied} of {known} migrations applied"
    );
    Ok(())
}

/// A pooled connection idle this long is pinged before use, in case PostgreSQL restarted or
/// something in between dropped it meanwhile.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How long start-up waits for PostgreSQL before giving up with a clear message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What connecting does to the database besides connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Create it if missing and apply the migrations (serving, `migrate`).
    Prepare,
    /// Require it to exist with every migration applied (inspection commands: a mistyped
    /// URL must not quietly create an empty database that looks healthy).
    Existing,
}

/// Connects to the database at `url`, preparing it as `setup` says. Waiting for a pooled
/// connection gives up after `acquire_timeout`.
///
/// # Errors
/// When PostgreSQL cannot be reached (the message names the host), the database cannot be
/// created, a migration fails, or (`Existing`) the database is missing or behind.
pub async fn connect_database(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    setup: Setup,
) -> anyhow::Result<PgPool> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a PostgreSQL URL")?;
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let unreachable = || format!("cannot reach PostgreSQL at {server}");

    let exists = tokio::time::timeout(CONNECT_TIMEOUT, Postgres::database_exists(url))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {CONNECT_TIMEOUT:?}"))
        .with_context(unreachable)?
        .map_err(flatten)
        .with_context(unreachable)?;
    match (exists, setup) {
        (true, _) => {}
        (false, Setup::Prepare) => create_database(url, &database).await?,
        (false, Setup::Existing) => anyhow::bail!(
            "database {database:?} does not exist at {server} (is DATABASE_URL right? `registrar migrate` creates it)"
        ),
    }
    // A statement or transaction that hangs (a lock, a stalled client) must not hold its locks
    // and connection forever: the server ends it.
    let options = options.options([
        ("statement_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "15s"),
    ]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // sqlx pings a connection before every use by default: a round trip per query, half
        // the cost of a short one. A connection in steady use has just proven itself (sqlx
        // pings it on release too), so only one that sat idle is checked before use.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        // A request that cannot get a connection soon is answered 503, not left hanging.
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(flatten)
        .with_context(|| format!("cannot connect to database {database:?} at {server}"))?;
    match setup {
        Setup::Prepare => MIGRATOR
            .run(&pool)
            .await
            .context("running database migrations")?,
        Setup::Existing => database_ready(&pool)
            .await
            .with_context(|| format!("database {database:?} is not ready (`registrar migrate`)"))?,
    }
    Ok(pool)
}

/// sqlx's messages already quote their cause; as an error chain the cause would be printed
/// twice in the one-line start-up error.
fn flatten(error: sqlx::Error) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

async fn create_database(url: &str, database: &str) -> anyhow::Result<()> {
    match Postgres::create_database(url).await {
        Ok(()) => {
            tracing::info!(database, "created the database");
            Ok(())
        }
        // Another instance created it between our check and our create.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P04") => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot create database {database:?}")),
    }
}
