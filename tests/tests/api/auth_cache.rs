//! Access tokens are checked against an in-memory cache of live sessions, which PostgreSQL's
//! notifications keep true: a revocation by anyone reaches every instance, and a cache that
//! loses its notifications stops serving instead of serving stale answers.
use crate::helpers::{TestApp, address_of, poll_until, spawn_app, through};
use crate::proxy::TcpProxy;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Whether the instance at `address` says its cache serves.
async fn serving_at(app: &TestApp, address: &str) -> bool {
    let text = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .any(|line| line == "registrar_auth_cache_serving 1")
}

pub async fn wait_until_serving(app: &TestApp, address: &str) {
    let serving = poll_until(WAIT, || async {
        serving_at(app, address).await.then_some(())
    })
    .await;
    assert!(
        serving.is_some(),
        "the auth cache at {address} never served"
    );
}

/// Polls `GET /auth/me` until it answers `status`; returns how long that took.
async fn me_until(app: &TestApp, address: &str, token: &str, status: u16) -> Option<Duration> {
    let started = Instant::now();
    poll_until(WAIT, || async {
        (app.me_at(address, token).await.status() == status).then_some(started.elapsed())
    })
    .await
}

async fn revoke_every_session_by_hand(app: &TestApp) {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL")
        .execute(&app.db)
        .await
        .unwrap();
}

/// A service whose cache serves and has seen alice's session live; its address and her token.
async fn with_a_remembered_session() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let address = app.url("");
    wait_until_serving(&app, &address).await;
    let session = app.registered("alice").await;
    let token = session["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&token).await.status(), 200, "remembered");
    (app, address, token)
}

#[tokio::test]
async fn a_known_session_is_checked_without_the_database_and_a_revocation_by_hand_ends_it() {
    let (app, address, token) = with_a_remembered_session().await;
    let token = token.as_str();

    // With the tables locked, a check that needed the database would wait out the statement
    // timeout and fail; the remembered session answers.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE sessions, users, revoked_access_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let me = app.me(token).await;
    lock.rollback().await.unwrap();
    assert_eq!(me.status(), 200, "served from the cache");

    // An operator revokes the session in psql: PostgreSQL tells the cache.
    revoke_every_session_by_hand(&app).await;
    let took = me_until(&app, &address, token, 401).await;
    assert!(took.is_some(), "a revocation by hand was never seen");
    println!("revoked by hand, refused after {took:?}");
}

#[tokio::test]
async fn a_cache_that_loses_its_notifications_stops_serving_until_it_listens_again() {
    let (app, address, token) = with_a_remembered_session().await;
    let token = token.as_str();

    // Cut the cache's connection, and revoke while nobody listens: that notification is lost.
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE $1 || ' %'",
    )
    .bind(adapters::AUTH_CACHE_APPLICATION_NAME)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        cut,
        [true],
        "the cache listens on one connection of its own"
    );
    revoke_every_session_by_hand(&app).await;

    // What it remembered went with the connection: the database answers.
    let took = me_until(&app, &address, token, 401).await;
    assert!(
        took.is_some(),
        "the cache served a session revoked while it was deaf"
    );
    println!("revoked while the cache was cut off, refused after {took:?}");
    wait_until_serving(&app, &address).await;
    assert_eq!(
        app.me(token).await.status(),
        401,
        "and after it listens again"
    );
}

/// A sibling instance that reaches PostgreSQL through a proxy the test can cut; its address.
async fn sibling_behind_a_proxy(app: &TestApp) -> (TcpProxy, String) {
    let proxy = TcpProxy::start(address_of(&app.settings.database_url)).await;
    let mut settings = app.settings.clone();
    settings.database_url = through(&settings.database_url, &proxy);
    let sibling = app.spawn_sibling_with(settings).await;
    (proxy, sibling)
}

#[tokio::test]
async fn an_instance_cut_off_from_the_database_keeps_nothing_stale_once_back() {
    let app = spawn_app().await;
    let (proxy, sibling) = sibling_behind_a_proxy(&app).await;
    wait_until_serving(&app, &sibling).await;
    let session = app.registered("alice").await;
    let token = session["accessToken"].as_str().unwrap();
    assert_eq!(app.me_at(&sibling, token).await.status(), 200, "remembered");

    // Revoked while the sibling cannot hear of it, during an outage that refuses connections
    // (a restart of PostgreSQL, or of a proxy in between) and ends just after the cache, quiet
    // for 2 s since the last notification, checks its connection: where a reconnect by sqlx
    // would go unnoticed. The sleep sets the fault's timing; it waits for nothing.
    let last_notification = Instant::now();
    sqlx::query("SELECT pg_notify('auth_cache', 'all')")
        .execute(&app.db)
        .await
        .unwrap();
    proxy.cut_and_refuse();
    revoke_every_session_by_hand(&app).await;
    tokio::time::sleep(Duration::from_millis(2050).saturating_sub(last_notification.elapsed()))
        .await;
    proxy.restore().await;

    wait_until_serving(&app, &sibling).await;
    assert_eq!(
        app.me_at(&sibling, token).await.status(),
        401,
        "a revocation missed during the outage is not served from memory"
    );
}

/// The server processes of the auth caches listening on this test's database.
async fn listening_backends(app: &TestApp) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE $1 || ' %' ORDER BY pid",
    )
    .bind(adapters::AUTH_CACHE_APPLICATION_NAME)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_listening_connection_gone_silent_is_replaced_and_its_server_process_ended() {
    let app = spawn_app().await;
    let (proxy, sibling) = sibling_behind_a_proxy(&app).await;
    wait_until_serving(&app, &sibling).await;
    let before = listening_backends(&app).await;
    assert_eq!(before.len(), 2, "the service's and the sibling's");

    // The sibling's connections go silent without closing. Its cache notices when its check
    // fails, listens on a new connection, and ends the old one's server process, which would
    // otherwise stay until TCP gives up on it.
    proxy.freeze();
    let replaced = poll_until(WAIT, || async {
        let now = listening_backends(&app).await;
        (now.len() == 2 && now != before).then_some(now)
    })
    .await;
    assert!(
        replaced.is_some(),
        "not replaced, or the old one left listening: {:?}",
        listening_backends(&app).await
    );
    wait_until_serving(&app, &sibling).await;
    proxy.cut();
}

#[tokio::test]
async fn the_cache_does_not_serve_while_a_trigger_is_not_enable_always() {
    let (app, address, _) = with_a_remembered_session().await;
    // Steady traffic on the channel (other instances' echoes), which must not put off the
    // cache's checks.
    let traffic = {
        let db = app.db.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                let _ = sqlx::query("SELECT pg_notify('auth_cache', 'echo:elsewhere')")
                    .execute(&db)
                    .await;
            }
        })
    };
    // As a data-only pg_restore --disable-triggers leaves it.
    sqlx::query("ALTER TABLE sessions ENABLE TRIGGER auth_cache_session_revoked")
        .execute(&app.db)
        .await
        .unwrap();
    let stopped = poll_until(WAIT, || async {
        (!serving_at(&app, &address).await).then_some(())
    })
    .await;
    assert!(
        stopped.is_some(),
        "it served with a trigger that replication would skip"
    );

    sqlx::query("ALTER TABLE sessions ENABLE ALWAYS TRIGGER auth_cache_session_revoked")
        .execute(&app.db)
        .await
        .unwrap();
    wait_until_serving(&app, &address).await;
    traffic.abort();
}
