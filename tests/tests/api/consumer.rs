//! The service's AMQP consumer: valid events are handled and acked, failing ones retried, invalid
//! and hopeless ones dead-lettered.
use crate::helpers::{
    HELD_PREFIX, Options, PANIC_USERNAME, POISON_USERNAME, RECORDER, TestApp, poll_until,
    spawn_app, spawn_app_with, two_quick_attempts, valid_registration,
};
use application::IncomingEvent;
use application::RetryPolicy;
use lapin::BasicProperties;
use lapin::options::BasicGetOptions;
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_malformed_message_is_rejected_and_the_next_valid_one_is_still_processed() {
    let app = spawn_app().await;
    let publish = |message_id: String, body: &'static str| {
        let properties = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type("application/json".into());
        app.publish_to_exchange(body.as_bytes(), properties)
    };
    publish(uuid::Uuid::new_v4().to_string(), "{ this is not json").await;
    publish(
        uuid::Uuid::new_v4().to_string(),
        r#"{"event":"user.registered","data":{"id":"x"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
    )
    .await;
    let valid_id = uuid::Uuid::new_v4();
    publish(
        valid_id.to_string(),
        r#"{"event":"user.registered","data":{"id":"0199fd4e-8a3b-7c1e-9d2f-3a4b5c6d7e8f","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z","extra":"ignored"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
    )
    .await;

    let handled = app
        .next_handled(WAIT)
        .await
        .expect("the valid message is handled");
    let IncomingEvent::UserRegistered(event) = handled else {
        panic!("unexpected {handled:?}")
    };
    assert_eq!(event.event_id.as_uuid(), valid_id);
    assert_eq!(event.username.as_ref(), "bob");

    let stats = app.recorder_stats.clone();
    let settled = poll_until(WAIT, || async {
        (stats.dead_lettered() >= 2 && stats.handled() >= 1).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "dead-lettered {} handled {}",
        stats.dead_lettered(),
        stats.handled()
    );
    println!(
        "malformed: dead-lettered {}, handled {}",
        stats.dead_lettered(),
        stats.handled()
    );
    assert_eq!(
        stats.dead_lettered(),
        2,
        "once each, never requeued into a loop"
    );
    assert_eq!(stats.handled(), 1);
    assert!(
        app.next_handled(Duration::ZERO).await.is_none(),
        "nothing invalid reached the listener"
    );

    // Both wait in the dead-letter queue, saying why.
    for _ in 0..2 {
        let (_, headers) = next_dead_letter(&app).await;
        let reason = text(headers.inner().get("x-registrar-reason").expect("a reason"));
        assert!(reason.contains("undecodable"), "{reason}");
    }
}

#[tokio::test]
async fn a_dead_letter_keeps_neither_the_routing_nor_the_expiry_of_a_hostile_message() {
    let app = spawn_app().await;
    let queue = app.queue_of(RECORDER);
    // Copied as it came, `CC` would route the dead-letter copy back to the listener's queue
    // (again and again), and `expiration` would drop it from the dead-letter queue.
    let mut headers = FieldTable::default();
    headers.insert(
        "CC".into(),
        AMQPValue::FieldArray(vec![AMQPValue::LongString(queue.as_str().into())].into()),
    );
    let hostile = BasicProperties::default()
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_expiration("60000".into())
        .with_headers(headers);
    app.publish_to_exchange(b"{ not json", hostile).await;
    let stats = app.recorder_stats.clone();
    let dead_lettered = poll_until(WAIT, || async {
        (stats.dead_lettered() >= 1).then_some(())
    });
    assert!(
        dead_lettered.await.is_some(),
        "the message is dead-lettered"
    );

    // An event published after it is handled after anything the copy put back in the queue.
    assert_eq!(
        app.register(&valid_registration("after")).await.status(),
        201
    );
    let handled = poll_until(WAIT, || async { (stats.handled() >= 1).then_some(()) }).await;
    assert!(handled.is_some(), "the next event is handled");
    println!(
        "hostile copy: dead-lettered {}, handled {}",
        stats.dead_lettered(),
        stats.handled()
    );
    assert_eq!(stats.dead_lettered(), 1, "dead-lettered once, not looping");
    let dead_letter = app
        .channel
        .basic_get(
            adapters::dead_letter_queue(&queue).as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the copy waits in the dead-letter queue");
    let properties = &dead_letter.delivery.properties;
    assert_eq!(
        properties.expiration(),
        &None,
        "a dead letter never expires"
    );
    let headers = properties.headers().clone().unwrap_or_default();
    assert!(!headers.inner().contains_key("CC"));
    assert!(headers.inner().contains_key("x-registrar-reason"));
}

#[tokio::test]
async fn a_panicking_listener_fails_that_event_only_and_the_service_runs_on() {
    let app = spawn_app_with(Options {
        consumer_retry: Some(two_quick_attempts()),
        ..Options::default()
    })
    .await;
    app.registered(PANIC_USERNAME).await;
    let stats = app.wait_for_recorder_dead_letters(1).await;
    assert_eq!(stats.retried(), 1, "a panic is retried like an error");
    let (body, headers) = next_dead_letter(&app).await;
    assert!(String::from_utf8_lossy(&body).contains(PANIC_USERNAME));
    let reason = text(headers.inner().get("x-registrar-reason").unwrap());
    assert!(
        reason.contains("the listener panicked: the test listener panics on panicky"),
        "{reason}"
    );

    // The consumer, and the service with it, carry on.
    app.registered("afterwards").await;
    let Some(IncomingEvent::UserRegistered(next)) = app.next_handled(WAIT).await else {
        panic!("the next event is handled")
    };
    assert_eq!(next.username.as_ref(), "afterwards");
    println!(
        "panic: retried {}, dead-lettered {}, handled {}",
        stats.retried(),
        stats.dead_lettered(),
        stats.handled()
    );
}

#[tokio::test]
async fn a_failing_listener_is_retried_with_delays_then_dead_lettered() {
    let retry = RetryPolicy {
        delays: vec![Duration::from_millis(20), Duration::from_millis(40)],
        max_attempts: 3,
    };
    let app = spawn_app_with(Options {
        consumer_retry: Some(retry),
        ..Options::default()
    })
    .await;
    assert_eq!(
        app.register(&valid_registration(POISON_USERNAME))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.register(&valid_registration("healthy")).await.status(),
        201
    );

    let stats = app.recorder_stats.clone();
    let settled = poll_until(WAIT, || async {
        (stats.dead_lettered() == 1 && stats.handled() >= 1).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "retried {} dead-lettered {} handled {}",
        stats.retried(),
        stats.dead_lettered(),
        stats.handled()
    );
    println!(
        "poison: retried {}, dead-lettered {}, handled {}",
        stats.retried(),
        stats.dead_lettered(),
        stats.handled()
    );
    assert_eq!(
        stats.retried(),
        2,
        "attempts 1 and 2 were retried, attempt 3 was the last"
    );
    let Some(IncomingEvent::UserRegistered(healthy)) = app.next_handled(WAIT).await else {
        panic!("the healthy event")
    };
    assert_eq!(
        healthy.username.as_ref(),
        "healthy",
        "one poison event does not block the others"
    );

    let (body, headers) = next_dead_letter(&app).await;
    assert_eq!(
        headers.inner().get("x-registrar-attempts"),
        Some(&AMQPValue::LongUInt(3))
    );
    let reason = text(headers.inner().get("x-registrar-reason").unwrap());
    assert!(reason.contains("refuses poison"), "{reason}");
    assert!(String::from_utf8_lossy(&body).contains("\"username\":\"poison\""));
}

fn text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(text) => text.to_string(),
        other => format!("{other:?}"),
    }
}

/// The next message in the service's dead-letter queue: its body and headers.
async fn next_dead_letter(app: &TestApp) -> (Vec<u8>, FieldTable) {
    let queue = adapters::dead_letter_queue(&app.queue_of(RECORDER));
    let message = app
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a message in the dead-letter queue");
    let headers = message
        .delivery
        .properties
        .headers()
        .clone()
        .expect("dead letters carry headers");
    (message.delivery.data.clone(), headers)
}

#[tokio::test]
async fn a_backlog_stays_in_the_broker_beyond_the_prefetch() {
    const PREFETCH: u16 = 5;
    const BACKLOG: u32 = 60;
    let app = spawn_app_with(Options {
        consumer_prefetch: Some(PREFETCH),
        ..Options::default()
    })
    .await;
    for n in 0..BACKLOG {
        let body = format!(
            r#"{{"event":"user.registered","data":{{"id":"{}","email":"{HELD_PREFIX}{n}@example.com","username":"{HELD_PREFIX}{n}","createdAt":"2025-10-19T16:37:15.123Z"}},"timestamp":"2025-10-19T16:37:15.456Z"}}"#,
            uuid::Uuid::new_v4()
        );
        let properties =
            BasicProperties::default().with_message_id(uuid::Uuid::new_v4().to_string().into());
        app.publish_to_exchange(body.as_bytes(), properties).await;
    }

    // The listener holds the first event; the consumer may hold PREFETCH, the broker the rest.
    let queue = app.queue_of(RECORDER);
    let expected = BACKLOG - u32::from(PREFETCH);
    let bounded = poll_until(WAIT, || async {
        (app.ready_in(&queue).await == expected).then_some(())
    })
    .await;
    let ready = app.ready_in(&queue).await;
    println!("backlog {BACKLOG}, prefetch {PREFETCH}: {ready} still in the broker");
    assert!(bounded.is_some(), "{ready} ready, expected {expected}");

    app.release_held.send_replace(true);
    let stats = app.recorder_stats.clone();
    let drained = poll_until(WAIT, || async {
        (stats.handled() == u64::from(BACKLOG)).then_some(())
    })
    .await;
    assert!(drained.is_some(), "handled {}", stats.handled());
}

#[tokio::test]
async fn a_consumer_whose_queue_is_deleted_declares_it_again_and_carries_on() {
    let app = spawn_app().await;
    let queue = app.queue_of(RECORDER);
    app.fresh_channel()
        .await
        .queue_delete(
            queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .expect("delete the queue under the consumer");

    // The broker cancels the consumer; it reconnects and declares its queue again.
    let consumers = || async {
        let declared = app
            .fresh_channel()
            .await
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..lapin::options::QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        (declared.consumer_count() == 1).then_some(())
    };
    assert!(
        poll_until(WAIT, consumers).await.is_some(),
        "the queue is back, with its consumer"
    );
    app.registered("afterwards").await;
    let Some(IncomingEvent::UserRegistered(event)) = app.next_handled(WAIT).await else {
        panic!("events flow again")
    };
    assert_eq!(event.username.as_ref(), "afterwards");
}

#[tokio::test]
async fn a_retry_queue_deleted_by_hand_loses_no_event() {
    let app = spawn_app_with(Options {
        consumer_retry: Some(two_quick_attempts()),
        ..Options::default()
    })
    .await;
    // The consumer is up (it has handled an event) before its side queues go.
    app.registered("first").await;
    assert!(matches!(
        app.next_handled(WAIT).await,
        Some(IncomingEvent::UserRegistered(_))
    ));
    let queue = app.queue_of(RECORDER);
    for side_queue in [
        adapters::retry_queue(&queue),
        adapters::dead_letter_queue(&queue),
    ] {
        app.channel
            .queue_delete(
                side_queue.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await
            .unwrap();
    }

    // The retry copy comes back unroutable; the original stays unacked, the consumer declares
    // its queues again, and the event goes on to its last attempt.
    app.registered(POISON_USERNAME).await;
    let stats = app.wait_for_recorder_dead_letters(1).await;
    let (body, headers) = next_dead_letter(&app).await;
    assert!(String::from_utf8_lossy(&body).contains("\"username\":\"poison\""));
    assert_eq!(
        headers.inner().get("x-registrar-attempts"),
        Some(&AMQPValue::LongUInt(2))
    );
    println!(
        "side queues deleted: retried {}, dead-lettered {}",
        stats.retried(),
        stats.dead_lettered()
    );
}
