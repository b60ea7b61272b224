//! Registration never waits on RabbitMQ, and no committed event is lost while it is away.
use crate::helpers::{Options, spawn_app_with, valid_registration};
use application::IncomingEvent;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const REGISTRATIONS: usize = 5;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn registrations_during_a_broker_outage_succeed_and_their_events_arrive_once_it_is_back() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = app.proxy.as_ref().expect("the broker is behind a proxy");
    proxy.cut();

    let mut user_ids = BTreeSet::new();
    for n in 0..REGISTRATIONS {
        let started = Instant::now();
        let response = app
            .register(&valid_registration(&format!("outage{n}")))
            .await;
        assert_eq!(response.status(), 201);
        // Far below the broker's 10 s connect timeout: the request never waited on it.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let body: serde_json::Value = response.json().await.unwrap();
        user_ids.insert(body["user"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        app.pending_outbox_events().await,
        REGISTRATIONS as i64,
        "all events wait in the outbox"
    );

    proxy.restore();

    // The relay reconnects by itself and every event arrives, exactly once each.
    app.wait_for_empty_outbox(WAIT).await;
    let published = app.drain_published().await;
    let published_users: BTreeSet<String> = published
        .iter()
        .map(|m| m.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    let message_ids: BTreeSet<String> = published.iter().map(|m| m.message_id()).collect();
    assert_eq!(
        published.len(),
        REGISTRATIONS,
        "one message per registration"
    );
    assert_eq!(message_ids.len(), REGISTRATIONS, "distinct message ids");
    assert_eq!(published_users, user_ids);

    // The consumer, also cut off, reconnects and handles them all.
    let mut handled_users = BTreeSet::new();
    while handled_users.len() < REGISTRATIONS {
        let Some(IncomingEvent::UserRegistered(event)) = app.next_handled(WAIT).await else {
            panic!("the consumer handled only {handled_users:?}");
        };
        handled_users.insert(event.user_id.to_string());
    }
    assert_eq!(handled_users, user_ids);
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_recovered_without_a_restart() {
    let app = spawn_app_with(Options {
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = app.proxy.as_ref().expect("the broker is behind a proxy");

    assert_eq!(
        app.register(&valid_registration("before")).await.status(),
        201
    );
    assert!(
        app.next_published(WAIT).await.is_some(),
        "the first event flows normally"
    );

    // Settled first: a cut between the broker routing a message and the relay receiving its
    // confirm legitimately publishes it again (at least once), which is not what this tests.
    app.wait_for_empty_outbox(WAIT).await;
    proxy.cut(); // kills the relay's and the consumer's live connections
    proxy.restore();
    assert_eq!(
        app.register(&valid_registration("after")).await.status(),
        201
    );

    let after = app
        .next_published(WAIT)
        .await
        .expect("events flow again after the reset");
    assert_eq!(after.json()["data"]["username"], "after");
    app.wait_for_empty_outbox(WAIT).await;
}
