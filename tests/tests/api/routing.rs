//! How events reach listeners: by event-type pattern, with CloudEvents headers, on classic or
//! quorum queues.
use crate::helpers::{
    Options, POISON_USERNAME, RECORDER, poll_until, spawn_app, spawn_app_with, two_quick_attempts,
};
use adapters::QueueType;
use application::IncomingEvent;
use lapin::options::{BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn header(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test]
async fn listeners_bind_by_event_type_pattern_and_get_only_what_they_asked_for() {
    let app = spawn_app().await;
    let wants_users = app
        .declare_listener_queue("users", &["user.*"], QueueType::Classic, 20)
        .await;
    let wants_orders = app
        .declare_listener_queue("orders", &["order.*"], QueueType::Classic, 20)
        .await;
    let body = app.registered("alice").await;

    let delivered = poll_until(WAIT, || app.take(&wants_users))
        .await
        .expect("the user.* queue gets user.registered");
    let event: serde_json::Value = serde_json::from_slice(&delivered.delivery.data).unwrap();
    assert_eq!(event["data"]["id"], body["user"]["id"]);
    let properties = &delivered.delivery.properties;
    assert_eq!(
        delivered.delivery.routing_key.as_str(),
        app.settings.amqp_routing_key,
        "the seed's routing key stays the message's own"
    );
    let headers = properties.headers().clone().expect("headers");
    assert!(
        !headers.inner().contains_key("BCC"),
        "the broker strips the extra routing key"
    );

    app.wait_for_empty_outbox(WAIT).await;
    let published = app.next_published(WAIT).await.expect("observed");
    assert!(
        app.take(&wants_orders).await.is_none(),
        "order.* gets nothing"
    );
    assert_eq!(
        Some(published.message_id().as_str()),
        properties.message_id().as_ref().map(|id| id.as_str()),
        "one event, one id, on every queue"
    );
}

#[tokio::test]
async fn published_events_carry_cloudevents_headers() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let published = app.next_published(WAIT).await.expect("the event");
    let headers = published.properties.headers().clone().expect("headers");
    let body = published.json();
    assert_eq!(
        header(&headers, "cloudEvents:specversion").as_deref(),
        Some("1.0")
    );
    assert_eq!(
        header(&headers, "cloudEvents:id"),
        Some(published.message_id())
    );
    assert_eq!(
        header(&headers, "cloudEvents:type").as_deref(),
        Some("user.registered")
    );
    assert_eq!(
        header(&headers, "cloudEvents:source").as_deref(),
        Some("/registrar")
    );
    assert_eq!(
        header(&headers, "cloudEvents:time").as_deref(),
        body["timestamp"].as_str(),
        "the event's time, to the millisecond"
    );
}

#[tokio::test]
async fn events_of_a_type_nobody_handles_are_acked_not_crashed_on() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    app.publish_to_exchange(
        br#"{"event":"user.deleted","data":{"id":"x"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
        lapin::BasicProperties::default().with_message_id(id.to_string().into()),
    )
    .await;
    let handled = app.next_handled(WAIT).await.expect("handed over");
    assert!(
        matches!(handled, IncomingEvent::Other { ref event_type, .. } if event_type == "user.deleted"),
        "{handled:?}"
    );
    let settled = poll_until(WAIT, || async {
        (app.log_stats.handled() == 1 && app.audit_stats.handled() == 1).then_some(())
    })
    .await;
    assert!(settled.is_some(), "log and audit ack it too");
    assert_eq!(app.log_stats.dead_lettered(), 0);
    // And the service still works.
    app.registered("after").await;
    let Some(IncomingEvent::UserRegistered(next)) = app.next_handled(WAIT).await else {
        panic!("the next event")
    };
    assert_eq!(next.username.as_ref(), "after");
}

#[tokio::test]
async fn on_quorum_queues_events_are_handled_retried_and_dead_lettered() {
    let app = spawn_app_with(Options {
        queue_type: Some(QueueType::Quorum),
        consumer_retry: Some(two_quick_attempts()),
        ..Options::default()
    })
    .await;
    // The queue really is a quorum queue: declaring it as classic is refused.
    // A refused declaration closes its channel: use one of its own.
    let probe = app.fresh_channel().await;
    let refused = probe
        .queue_declare(
            app.queue_of(RECORDER).as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(refused.is_err(), "a classic redeclaration must be refused");

    app.registered(POISON_USERNAME).await;
    app.registered("healthy").await;
    let Some(IncomingEvent::UserRegistered(healthy)) = app.next_handled(WAIT).await else {
        panic!("the healthy event")
    };
    assert_eq!(healthy.username.as_ref(), "healthy");
    let stats = app.wait_for_recorder_dead_letters(1).await;
    assert_eq!(
        stats.retried(),
        1,
        "through the quorum retry queue and back"
    );
    let dead = app
        .take(&adapters::dead_letter_queue(&app.queue_of(RECORDER)))
        .await
        .expect("the poison event waits in the dead-letter queue");
    assert!(String::from_utf8_lossy(&dead.delivery.data).contains(POISON_USERNAME));
}

#[tokio::test]
async fn a_quorum_queue_dead_letters_a_message_no_consumer_ever_settles() {
    let app = spawn_app().await;
    let queue = app
        .declare_listener_queue("stuck", &["#"], QueueType::Quorum, 2)
        .await;
    app.registered("alice").await;

    // A consumer that takes the message and gives it back, over and over, as one whose
    // connection a message breaks would.
    let mut deliveries = 0;
    while deliveries < 10 {
        let message = poll_until(Duration::from_secs(2), || async {
            app.channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("basic.get")
        })
        .await;
        let Some(message) = message else { break };
        deliveries += 1;
        message
            .delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .expect("nack");
    }
    println!("delivered {deliveries} times before the broker gave up on it");
    assert!(
        (2..10).contains(&deliveries),
        "the delivery limit of 2 stops redelivery; delivered {deliveries} times"
    );
    let dead_letters = adapters::dead_letter_queue(&queue);
    let dead = poll_until(WAIT, || app.take(&dead_letters))
        .await
        .expect("the broker moved it to the dead-letter queue");
    assert!(String::from_utf8_lossy(&dead.delivery.data).contains("alice"));
}
