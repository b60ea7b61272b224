//! Faults: registration never waits on RabbitMQ, no committed event is lost while it is away,
//! connections recover by themselves, and duplicates have no second effect.
use crate::helpers::{Options, TestApp, poll_until, spawn_app, spawn_app_with, valid_registration};
use application::IncomingEvent;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const REGISTRATIONS: usize = 200;
/// How many registrations run at once.
const CONCURRENCY: usize = 8;
const WAIT: Duration = Duration::from_secs(60);

/// Registers `count` users named `<prefix><n>`, `CONCURRENCY` at a time, spread over
/// `addresses`; calls `on_done(completed)` after each. Returns the user ids.
async fn register_many(
    app: &TestApp,
    addresses: &[String],
    prefix: &str,
    count: usize,
    on_done: impl Fn(usize),
) -> BTreeSet<String> {
    let completed = AtomicUsize::new(0);
    futures_util::stream::iter(0..count)
        .map(|n| {
            let address = &addresses[n % addresses.len()];
            let completed = &completed;
            let on_done = &on_done;
            async move {
                let started = Instant::now();
                let response = app
                    .client
                    .post(format!("{address}/auth/register"))
                    .json(&valid_registration(&format!("{prefix}{n}")))
                    .send()
                    .await
                    .expect("the service answers");
                assert_eq!(response.status(), 201);
                // Far below the broker's 10 s timeouts: no request waited on it.
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "took {:?}",
                    started.elapsed()
                );
                let body: serde_json::Value = response.json().await.unwrap();
                on_done(completed.fetch_add(1, Ordering::SeqCst) + 1);
                body["user"]["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// The distinct users the test listener handled, waiting until it has seen `expected`.
async fn handled_users(app: &TestApp, expected: usize) -> (BTreeSet<String>, usize) {
    let mut users = BTreeSet::new();
    let mut deliveries = 0;
    while users.len() < expected {
        let Some(IncomingEvent::UserRegistered(event)) = app.next_handled(WAIT).await else {
            panic!("the listener handled only {} users", users.len());
        };
        deliveries += 1;
        users.insert(event.user_id.to_string());
    }
    (users, deliveries)
}

#[tokio::test]
async fn the_broker_cut_while_200_registrations_run_loses_no_event() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = app.proxy.as_ref().expect("the broker is behind a proxy");
    let user_ids = register_many(
        &app,
        std::slice::from_ref(&app.address),
        "cut",
        REGISTRATIONS,
        |done| {
            if done == REGISTRATIONS / 4 {
                proxy.cut(); // mid-stream: relay and consumers lose their connections
            }
        },
    )
    .await;
    let pending = app.pending_outbox_events().await;
    assert_eq!(app.user_count().await, REGISTRATIONS as i64);
    assert!(
        pending > 0,
        "events wait in the outbox while the broker is away"
    );

    proxy.restore().await;
    app.wait_for_empty_outbox(WAIT).await;
    let published = app.drain_published().await;
    let message_ids: BTreeSet<String> = published.iter().map(|m| m.message_id()).collect();
    let published_users: BTreeSet<String> = published
        .iter()
        .map(|m| m.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        message_ids.len(),
        REGISTRATIONS,
        "one event per registration"
    );
    assert_eq!(published_users, user_ids);

    // Every listener, cut off too, reconnects and gets every event.
    let (handled, deliveries) = handled_users(&app, REGISTRATIONS).await;
    assert_eq!(handled, user_ids);
    app.wait_for_audit_rows(REGISTRATIONS as i64, WAIT).await;
    let log = app.log_stats.clone();
    let log_done = poll_until(WAIT, || async {
        (log.handled() >= REGISTRATIONS as u64).then_some(())
    })
    .await;
    assert!(log_done.is_some(), "log handled {}", log.handled());
    println!(
        "users {}, pending at restore {pending}, published {} ({} distinct), \
         test listener {deliveries} deliveries ({} distinct), log {}, audit rows {}",
        app.user_count().await,
        published.len(),
        message_ids.len(),
        handled.len(),
        log.handled(),
        app.audit_rows().await
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_recovered_without_a_restart() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = app.proxy.as_ref().expect("the broker is behind a proxy");

    app.registered("before").await;
    assert!(
        app.next_published(WAIT).await.is_some(),
        "the first event flows normally"
    );
    assert!(app.next_handled(WAIT).await.is_some());

    // Settled first: a cut between the broker routing a message and the relay receiving its
    // confirm legitimately publishes it again (at least once), which is not what this tests.
    app.wait_for_empty_outbox(WAIT).await;
    proxy.cut(); // kills the relay's and the consumers' live connections
    proxy.restore().await;
    app.registered("after").await;

    let after = app
        .next_published(WAIT)
        .await
        .expect("the relay publishes again after the reset");
    assert_eq!(after.json()["data"]["username"], "after");
    // "before" may come again: handled, its ack may not have reached the broker before the
    // cut, and an unacked message is redelivered (at least once).
    let mut redelivered = 0;
    loop {
        let Some(IncomingEvent::UserRegistered(handled)) = app.next_handled(WAIT).await else {
            panic!("the consumer handles events again after the reset")
        };
        match handled.username.as_ref() {
            "after" => break,
            "before" if redelivered == 0 => redelivered += 1,
            other => panic!("unexpected {other}"),
        }
    }
    println!("reset: the consumer recovered; 'before' redelivered {redelivered} time(s)");
    app.wait_for_empty_outbox(WAIT).await;
}

#[tokio::test]
async fn an_event_published_again_after_a_crash_before_its_mark_has_one_effect() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let first = app.next_published(WAIT).await.expect("published");
    app.wait_for_audit_rows(1, WAIT).await;

    // What a relay that died between the broker's confirm and its own mark leaves behind:
    // the event still pending, its claim expired.
    let id = uuid::Uuid::parse_str(&first.message_id()).unwrap();
    sqlx::query("UPDATE outbox SET published_at = NULL, claimed_until = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();

    let again = app
        .next_published(WAIT)
        .await
        .expect("the relay publishes it again");
    assert_eq!(again.message_id(), first.message_id(), "same message id");
    assert_eq!(again.body, first.body, "same bytes");
    let audit = app.audit_stats.clone();
    let acked = poll_until(WAIT, || async { (audit.handled() >= 2).then_some(()) }).await;
    assert!(acked.is_some(), "the duplicate reached the audit listener");
    assert_eq!(app.audit_rows().await, 1, "and had no second effect");
    println!(
        "deliveries to audit: {}, audit rows: {}",
        audit.handled(),
        app.audit_rows().await
    );
}

#[tokio::test]
async fn two_instances_share_200_registrations_and_each_event_is_audited_once() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let addresses = [app.address.clone(), sibling];
    let user_ids = register_many(&app, &addresses, "pair", REGISTRATIONS, |_| {}).await;
    assert_eq!(app.user_count().await, REGISTRATIONS as i64);

    app.wait_for_empty_outbox(WAIT).await;
    app.wait_for_audit_rows(REGISTRATIONS as i64, WAIT).await;
    let published = app.drain_published().await;
    let message_ids: BTreeSet<String> = published.iter().map(|m| m.message_id()).collect();
    let published_users: BTreeSet<String> = published
        .iter()
        .map(|m| m.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids.len(), REGISTRATIONS);
    assert_eq!(published_users, user_ids);
    // Two relays claim with SKIP LOCKED: in normal operation no event goes out twice.
    assert_eq!(published.len(), REGISTRATIONS, "each event published once");
    println!(
        "users {}, published {}, audit rows {}",
        app.user_count().await,
        published.len(),
        app.audit_rows().await
    );
}
