//! The command line's jobs: `consume`, `migrate`, `outbox status`, `outbox replay`.
use crate::helpers::{Options, poll_until, spawn_app, spawn_app_with, valid_registration};
use bootstrap::commands;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn outbox_status_counts_pending_and_recently_published_events() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = app.proxy.as_ref().expect("a proxy");
    proxy.cut();
    for tag in ["status1", "status2"] {
        app.registered(tag).await;
    }
    let status = commands::outbox_status(&app.settings).await.unwrap();
    println!("while the broker is away: {status:?}");
    assert_eq!(status.pending, 2);
    assert!(status.oldest_pending_age.is_some());

    proxy.restore().await;
    app.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let status = commands::outbox_status(&app.settings).await.unwrap();
    println!("once it is back: {status:?}");
    assert_eq!(status.pending, 0);
    assert_eq!(status.oldest_pending_age, None);
    assert_eq!(status.published_last_hour, 2);
}

#[tokio::test]
async fn a_replay_backfills_one_listener_and_no_other() {
    let app = spawn_app().await;
    for tag in ["replay1", "replay2", "replay3"] {
        app.registered(tag).await;
    }
    app.wait_for_audit_rows(3, WAIT).await;
    let settled = poll_until(WAIT, || async {
        (app.log_stats.handled() == 3 && app.recorder_stats.handled() == 3).then_some(())
    })
    .await;
    assert!(settled.is_some(), "every listener had the events once");
    while app.next_handled(Duration::ZERO).await.is_some() {}
    assert_eq!(app.drain_published().await.len(), 3);

    // As if `audit` were a new listener: no history at all.
    sqlx::query("TRUNCATE audit_log, inbox")
        .execute(&app.db)
        .await
        .unwrap();
    let replayed = commands::replay(&app.settings, "audit", None)
        .await
        .unwrap();
    assert_eq!(replayed, 3);
    app.wait_for_audit_rows(3, WAIT).await;

    // Nobody else saw a thing: not the other listeners, not a queue bound to the exchange.
    assert!(app.next_handled(Duration::from_millis(500)).await.is_none());
    let observed = app.drain_published().await.len();
    println!(
        "replayed {replayed} to audit; audit rows {}, log handled {}, observer got {observed}",
        app.audit_rows().await,
        app.log_stats.handled(),
    );
    assert_eq!(app.log_stats.handled(), 3);
    assert_eq!(observed, 0);

    // A second replay is harmless: the inbox knows every event.
    assert_eq!(
        commands::replay(&app.settings, "audit", None)
            .await
            .unwrap(),
        3
    );
    let audit = app.audit_stats.clone();
    let acked = poll_until(WAIT, || async { (audit.handled() == 9).then_some(()) }).await;
    assert!(acked.is_some(), "audit handled {}", audit.handled());
    assert_eq!(app.audit_rows().await, 3, "still one row per event");
}

#[tokio::test]
async fn a_replay_takes_only_events_since_the_given_time() {
    let app = spawn_app().await;
    app.registered("old").await;
    app.wait_for_empty_outbox(WAIT).await;
    let cutoff = domain::Timestamp::from_datetime(chrono::Utc::now());
    app.registered("new").await;
    app.wait_for_empty_outbox(WAIT).await;
    assert_eq!(
        commands::replay(&app.settings, "audit", Some(cutoff))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn naming_a_listener_that_does_not_exist_lists_those_that_do() {
    let app = spawn_app().await;
    let error = commands::replay(&app.settings, "no-such-listener", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"no-such-listener\""), "{error}");
    assert!(error.contains("log") && error.contains("audit"), "{error}");
    let error = commands::consume(app.settings.clone(), &["nope".into()], async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"nope\""), "{error}");
}

#[tokio::test]
async fn inspecting_a_database_that_does_not_exist_fails_instead_of_creating_it() {
    let app = spawn_app().await;
    let missing = crate::helpers::database_name("typo");
    let services = crate::helpers::services().await;
    let settings = bootstrap::Settings {
        database_url: crate::helpers::with_database(&services.postgres_url, &missing),
        ..app.settings.clone()
    };
    let error = format!(
        "{:#}",
        commands::outbox_status(&settings).await.unwrap_err()
    );
    assert!(error.contains("does not exist"), "{error}");
    let error = format!(
        "{:#}",
        commands::replay(&settings, "audit", None)
            .await
            .unwrap_err()
    );
    assert!(error.contains("does not exist"), "{error}");
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&missing)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(created, 0, "no empty database was created");
}

#[tokio::test]
async fn consume_runs_only_the_named_listeners() {
    let app = spawn_app_with(Options {
        consumers_disabled: true,
        ..Options::default()
    })
    .await;
    assert_eq!(
        app.register(&valid_registration("consume1")).await.status(),
        201
    );
    app.wait_for_empty_outbox(WAIT).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = app.settings.clone();
    let consumer = tokio::spawn(async move {
        commands::consume(settings, &["audit".to_owned()], async {
            let _ = stopped.await;
        })
        .await
    });
    app.wait_for_audit_rows(1, WAIT).await;
    let _ = stop.send(());
    consumer.await.unwrap().unwrap();

    // The log listener did not run: its event still waits in its queue.
    let waiting = app.take(&app.queue_of("log")).await;
    assert!(waiting.is_some(), "the log queue kept its event");
}

#[tokio::test]
async fn migrate_creates_the_database_and_its_tables() {
    let app = spawn_app().await;
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = crate::helpers::database_name(&unique);
    let services = crate::helpers::services().await;
    let settings = bootstrap::Settings {
        database_url: crate::helpers::with_database(&services.postgres_url, &database),
        ..app.settings.clone()
    };
    commands::migrate(&settings).await.unwrap();
    let pool = sqlx::PgPool::connect(&settings.database_url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables
         WHERE table_name IN ('users', 'outbox', 'audit_log', 'inbox')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let admin = sqlx::PgPool::connect(&services.postgres_url).await.unwrap();
    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(tables, 4);
}
