//! Sessions known to be live and the users they belong to, kept in memory so that checking an
//! access token (`GET /auth/me` and every authenticated request) needs no database round trip.
//!
//! A cache of revocations is only as good as its news of them. PostgreSQL triggers NOTIFY
//! [`AUTH_CACHE_CHANNEL`] whenever a session is revoked or a user row changes (whoever does
//! it: this service, another instance, an operator in psql), and every instance listens. The
//! cache serves only while that listening connection is known to work ([`AuthCache::check`]):
//! it starts empty, serves once a notification sent from a second connection arrives on it,
//! empties and stops serving the moment the connection is lost or fails that check, repeated
//! every 2 s, and starts again empty once listening resumes. Meanwhile every check
//! goes to the database, as without the cache. A check that raced a revocation is not
//! remembered (see [`Ticket`]), and nothing is kept for more than a minute.
use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::{SessionId, User, UserId};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The channel the `auth_cache_*` triggers notify, with `session:<id>` or `user:<id>`.
pub const AUTH_CACHE_CHANNEL: &str = "auth_cache";

/// How the listening connection's `application_name` starts (an operator sees it in
/// `pg_stat_activity`; a test cuts it); a UUID follows, its own.
pub const AUTH_CACHE_APPLICATION_NAME: &str = "registrar auth cache listener";
/// The `application_name` of the connection that sends the echoes.
const AUTH_CACHE_ECHO_APPLICATION_NAME: &str = "registrar auth cache echo";
/// The triggers of migration `20261204000002`, which announce every change the cache cares
/// about.
const AUTH_CACHE_TRIGGERS: [&str; 5] = [
    "auth_cache_session_revoked",
    "auth_cache_session_deleted",
    "auth_cache_sessions_truncated",
    "auth_cache_user_changed",
    "auth_cache_users_truncated",
];

/// How often the listening connection is checked ([`AuthCache::check`]), busy or not.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long a notification sent to check the connection may take to come back.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);
/// What is remembered is read again after this long: should a notification ever be missed in
/// a way nobody foresaw, the harm ends here.
const MAX_AGE: Duration = Duration::from_secs(60);
/// The pause before listening again after the connection was lost.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);
/// Bounds on what is remembered.
const MAX_SESSIONS: usize = 100_000;
const MAX_USERS: usize = 20_000;

#[derive(Debug, Default)]
pub struct AuthCache {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Whether notifications are being received, so that what is remembered can be trusted.
    listening: bool,
    /// Moves on with every notification and every change of `listening`.
    generation: u64,
    live_sessions: Remembered<()>,
    users: Remembered<User>,
}

/// What was read, by id, each with when it was stored; bounded, and stale after [`MAX_AGE`].
#[derive(Debug)]
struct Remembered<V> {
    entries: HashMap<Uuid, (V, Instant)>,
    capacity: usize,
}

impl<V: Clone> Remembered<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    fn get(&self, id: Uuid) -> Option<V> {
        self.entries
            .get(&id)
            .filter(|(_, stored)| stored.elapsed() < MAX_AGE)
            .map(|(value, _)| value.clone())
    }

    /// When full, it starts over: it refills on use.
    fn insert(&mut self, id: Uuid, value: V) {
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(id, (value, Instant::now()));
    }

    fn remove(&mut self, id: Uuid) {
        self.entries.remove(&id);
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            listening: false,
            generation: 0,
            live_sessions: Remembered::new(MAX_SESSIONS),
            users: Remembered::new(MAX_USERS),
        }
    }
}

/// Taken before reading the database; what was read is remembered only if no notification came
/// in between. A revocation committed while the read ran may not show in it, but its
/// notification arrives after the commit, hence after this ticket was taken, and voids it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(Option<u64>);

impl AuthCache {
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether it follows the database's changes, hence serves what it remembers.
    #[must_use]
    pub fn is_serving(&self) -> bool {
        self.state().listening
    }

    /// Whether `session` is known to be live; `false` means "ask the database".
    #[must_use]
    pub fn session_is_live(&self, session: SessionId) -> bool {
        let state = self.state();
        state.listening && state.live_sessions.get(session.as_uuid()).is_some()
    }

    #[must_use]
    pub fn user(&self, id: UserId) -> Option<User> {
        let state = self.state();
        state
            .listening
            .then(|| state.users.get(id.as_uuid()))
            .flatten()
    }

    #[must_use]
    pub fn ticket(&self) -> Ticket {
        let state = self.state();
        Ticket(state.listening.then_some(state.generation))
    }

    /// Remembers that the database, read under `ticket`, found `session` live.
    pub fn remember_live_session(&self, session: SessionId, ticket: Ticket) {
        let mut state = self.state();
        if state.still(ticket) {
            state.live_sessions.insert(session.as_uuid(), ());
        }
    }

    /// Remembers `user`, read from the database under `ticket`.
    pub fn remember_user(&self, user: &User, ticket: Ticket) {
        let mut state = self.state();
        if state.still(ticket) {
            state.users.insert(user.id.as_uuid(), user.clone());
        }
    }

    /// Forgets a session this instance has just revoked, without waiting for the notification.
    pub fn forget_session(&self, session: Uuid) {
        let mut state = self.state();
        state.generation += 1;
        state.live_sessions.remove(session);
    }

    /// Applies a notification's payload; `all` (a TRUNCATE), or one it cannot read, empties
    /// the cache. Echoes (instances checking their connections) change nothing.
    fn notified(&self, payload: &str) {
        let (kind, id) = payload.split_once(':').unwrap_or((payload, ""));
        if kind == "echo" {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        match (kind, Uuid::parse_str(id)) {
            ("session", Ok(id)) => state.live_sessions.remove(id),
            ("user", Ok(id)) => state.users.remove(id),
            _ => {
                if kind != "all" {
                    tracing::warn!(payload, "unexpected auth cache notification; starting over");
                }
                state.live_sessions.clear();
                state.users.clear();
            }
        }
    }

    /// Starts or stops serving, empty either way: while nobody listened, anything may have
    /// changed.
    fn set_listening(&self, listening: bool) {
        let mut state = self.state();
        state.listening = listening;
        state.generation += 1;
        state.live_sessions.clear();
        state.users.clear();
    }

    /// Listens for revocations until `stop` completes, on a connection of its own (not one of
    /// the pool's, which requests need), listening again whenever it is lost.
    pub async fn follow_changes(self: Arc<Self>, pool: PgPool, stop: impl Future<Output = ()>) {
        let options = (*pool.connect_options()).clone();
        let following = async {
            // The server process of a listening connection given up on, which may still be
            // there if the connection hung.
            let mut given_up: Option<Backend> = None;
            loop {
                // Pools of one per attempt: a connection that hung is left behind (sqlx sends
                // it UNLISTEN when dropped) without holding up the next attempt. The listening
                // connection's name is its own, so that only it is ever ended.
                let name = format!("{AUTH_CACHE_APPLICATION_NAME} {}", Uuid::new_v4().simple());
                let listener_pool = one_connection(&options, &name);
                let sender = one_connection(&options, AUTH_CACHE_ECHO_APPLICATION_NAME);
                match self.listen(&listener_pool, sender).await {
                    Ok(mut listening) => {
                        if let Some(hung) = given_up.take() {
                            listening.end(hung).await;
                        }
                        let lost = match self.check(&mut listening).await {
                            Ok(()) => {
                                self.set_listening(true);
                                tracing::debug!("auth cache serving");
                                let lost = self.relay_notifications(&mut listening).await;
                                self.set_listening(false);
                                lost
                            }
                            Err(failed) => failed,
                        };
                        tracing::warn!(
                            reason = format!("{lost:#}"),
                            "auth cache not serving: checking tokens in the database until it listens again"
                        );
                        given_up = Some(listening.backend);
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "auth cache cannot listen; checking tokens in the database"
                        );
                    }
                }
                tokio::time::sleep(RELISTEN_PAUSE).await;
            }
        };
        tokio::select! {
            () = following => {}
            () = stop => {}
        }
        self.set_listening(false);
    }

    /// A listening connection, not yet checked ([`AuthCache::check`]).
    async fn listen(&self, pool: &PgPool, sender: PgPool) -> anyhow::Result<Listening> {
        let mut listener = PgListener::connect_with(pool).await?;
        // sqlx would reconnect by itself, and what was notified meanwhile would be lost
        // without our knowing: a lost connection must end the listening instead.
        listener.eager_reconnect(false);
        listener.listen(AUTH_CACHE_CHANNEL).await?;
        let backend: Backend = sqlx::query_as(
            "SELECT pid, backend_start, application_name FROM pg_stat_activity
             WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut listener)
        .await?;
        // Connected now, so that the check's time goes to the check.
        drop(sender.acquire().await?);
        Ok(Listening {
            listener,
            backend,
            sender,
        })
    }

    /// Applies notifications until the connection is lost or fails its check, which runs
    /// every [`CHECK_INTERVAL`] however busy the channel is; returns why it stopped.
    async fn relay_notifications(&self, listening: &mut Listening) -> anyhow::Error {
        let mut next_check = tokio::time::Instant::now() + CHECK_INTERVAL;
        loop {
            tokio::select! {
                received = listening.listener.try_recv() => match received {
                    Ok(Some(notification)) => self.notified(notification.payload()),
                    Ok(None) => return anyhow::anyhow!("the listening connection was lost"),
                    Err(error) => return error.into(),
                },
                () = tokio::time::sleep_until(next_check) => {
                    if let Err(failed) = self.check(listening).await {
                        return failed;
                    }
                    next_check = tokio::time::Instant::now() + CHECK_INTERVAL;
                }
            }
        }
    }

    /// Shows that the connection still listens: it is still the backend that started
    /// listening; the triggers that announce changes are all on, whatever the session's
    /// replication role; and a notification sent from another connection, as a revocation
    /// is, arrives in time. (An echo sent on the listening connection itself would prove
    /// nothing behind a pooler in transaction mode, which delivers a connection's own
    /// notifications but drops the others'.) Notifications that arrive meanwhile are applied.
    async fn check(&self, listening: &mut Listening) -> anyhow::Result<()> {
        let echo = format!("echo:{}", Uuid::new_v4());
        let round_trip = async {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut listening.listener)
                .await?;
            anyhow::ensure!(
                pid == listening.backend.pid,
                "the listening connection is not the one that started listening"
            );
            let always: i64 = sqlx::query_scalar(
                "SELECT count(*) FILTER (WHERE tgenabled = 'A')
                 FROM (SELECT pg_notify($1, $2)) AS sent, pg_trigger
                 WHERE tgrelid IN ('sessions'::regclass, 'users'::regclass)
                   AND tgname = ANY($3)",
            )
            .bind(AUTH_CACHE_CHANNEL)
            .bind(&echo)
            .bind(&AUTH_CACHE_TRIGGERS[..])
            .fetch_one(&listening.sender)
            .await?;
            anyhow::ensure!(
                usize::try_from(always) == Ok(AUTH_CACHE_TRIGGERS.len()),
                "{always} of the {} auth_cache_* triggers on sessions and users are ENABLE ALWAYS (see the README)",
                AUTH_CACHE_TRIGGERS.len()
            );
            loop {
                let notification = listening
                    .listener
                    .try_recv()
                    .await?
                    .context("the listening connection was lost")?;
                if notification.payload() == echo {
                    return Ok(());
                }
                self.notified(notification.payload());
            }
        };
        tokio::time::timeout(ECHO_TIMEOUT, round_trip)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no echo within {ECHO_TIMEOUT:?}")))
    }
}

/// The listening connection, what names its server process, and where echoes come from.
struct Listening {
    listener: PgListener,
    backend: Backend,
    sender: PgPool,
}

impl Listening {
    /// Ends the server process of an earlier listening connection that may have hung: it
    /// would otherwise stay, listening, until TCP gives up on it. Pid, start time and the
    /// connection's own name together name it, so no other session is touched (not even one
    /// a pooler has since given that server connection to).
    async fn end(&self, hung: Backend) {
        let ended = tokio::time::timeout(
            ECHO_TIMEOUT,
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE pid = $1 AND backend_start = $2 AND application_name = $3",
            )
            .bind(hung.pid)
            .bind(hung.backend_start)
            .bind(&hung.application_name)
            .execute(&self.sender),
        )
        .await;
        if !matches!(ended, Ok(Ok(_))) {
            tracing::debug!("could not end an earlier auth cache connection");
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct Backend {
    pid: i32,
    backend_start: DateTime<Utc>,
    application_name: String,
}

fn one_connection(options: &PgConnectOptions, name: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options.clone().application_name(name))
}

impl State {
    fn still(&self, ticket: Ticket) -> bool {
        self.listening && ticket.0 == Some(self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Email, Timestamp, Username};

    fn session() -> SessionId {
        SessionId::from_uuid(Uuid::now_v7())
    }

    fn listening() -> Arc<AuthCache> {
        let cache = AuthCache::new();
        cache.set_listening(true);
        cache
    }

    fn alice() -> User {
        User {
            id: UserId::from_uuid(Uuid::now_v7()),
            email: Email::parse("alice@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            created_at: Timestamp::from_datetime(chrono::Utc::now()),
        }
    }

    #[test]
    fn it_serves_nothing_until_it_listens() {
        let cache = AuthCache::new();
        let (id, user) = (session(), alice());
        cache.remember_live_session(id, cache.ticket());
        cache.remember_user(&user, cache.ticket());
        assert!(!cache.session_is_live(id));
        assert_eq!(cache.user(user.id), None);
    }

    #[test]
    fn a_live_session_is_remembered_until_its_revocation_is_notified() {
        let cache = listening();
        let id = session();
        cache.remember_live_session(id, cache.ticket());
        assert!(cache.session_is_live(id));
        cache.notified(&format!("session:{}", id.as_uuid()));
        assert!(!cache.session_is_live(id));
    }

    #[test]
    fn a_read_that_raced_a_notification_is_not_remembered() {
        let cache = listening();
        let id = session();
        let ticket = cache.ticket();
        // The revocation of some session commits and is notified while the read runs.
        cache.notified(&format!("session:{}", Uuid::now_v7()));
        cache.remember_live_session(id, ticket);
        assert!(!cache.session_is_live(id));
    }

    #[test]
    fn losing_the_notifications_empties_it_and_stops_it_serving() {
        let cache = listening();
        let (id, user) = (session(), alice());
        let ticket = cache.ticket();
        cache.remember_live_session(id, ticket);
        cache.remember_user(&user, ticket);
        cache.set_listening(false);
        assert!(!cache.session_is_live(id));
        assert_eq!(cache.user(user.id), None);
        cache.set_listening(true);
        assert!(!cache.session_is_live(id), "it starts over empty");
        cache.remember_live_session(id, ticket);
        assert!(
            !cache.session_is_live(id),
            "a ticket from before does not count"
        );
    }

    #[test]
    fn a_user_change_is_forgotten_and_an_unreadable_notification_empties_it() {
        let cache = listening();
        let (id, user) = (session(), alice());
        cache.remember_user(&user, cache.ticket());
        assert_eq!(cache.user(user.id), Some(user.clone()));
        cache.notified(&format!("user:{}", user.id.as_uuid()));
        assert_eq!(cache.user(user.id), None);

        cache.remember_live_session(id, cache.ticket());
        cache.notified("garbage");
        assert!(!cache.session_is_live(id));
    }

    #[test]
    fn echoes_change_nothing_and_a_truncate_empties_it() {
        let cache = listening();
        let id = session();
        let ticket = cache.ticket();
        cache.notified(&format!("echo:{}", Uuid::new_v4()));
        cache.remember_live_session(id, ticket);
        assert!(cache.session_is_live(id), "an echo voids no ticket");
        cache.notified("all");
        assert!(!cache.session_is_live(id));
    }

    #[test]
    fn a_session_revoked_here_is_forgotten_at_once() {
        let cache = listening();
        let id = session();
        cache.remember_live_session(id, cache.ticket());
        cache.forget_session(id.as_uuid());
        assert!(!cache.session_is_live(id));
    }
}
