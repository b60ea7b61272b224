//! The service's AMQP consumer: valid events are handled and acked, invalid ones rejected.
use crate::helpers::{poll_until, spawn_app};
use application::IncomingEvent;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_malformed_message_is_rejected_and_the_next_valid_one_is_still_processed() {
    let app = spawn_app().await;
    let topology = &app.settings.topology;
    let publish = |message_id: String, body: &'static str| {
        let properties = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type("application/json".into());
        app.channel.basic_publish(
            topology.exchange.as_str().into(),
            topology.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )
    };
    publish(uuid::Uuid::new_v4().to_string(), "{ this is not json")
        .await
        .unwrap()
        .await
        .unwrap();
    publish(
        uuid::Uuid::new_v4().to_string(),
        r#"{"event":"user.registered","data":{"id":"x"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let valid_id = uuid::Uuid::new_v4();
    publish(
        valid_id.to_string(),
        r#"{"event":"user.registered","data":{"id":"0199fd4e-8a3b-7c1e-9d2f-3a4b5c6d7e8f","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z","extra":"ignored"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let handled = app
        .next_handled(WAIT)
        .await
        .expect("the valid message is handled");
    let IncomingEvent::UserRegistered(event) = handled else {
        panic!("unexpected {handled:?}")
    };
    assert_eq!(event.event_id.as_uuid(), valid_id);
    assert_eq!(event.username.as_ref(), "bob");

    let stats = app.consumer_stats.clone();
    let settled = poll_until(WAIT, || async {
        (stats.rejected() >= 2 && stats.handled() >= 1).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "rejected {} handled {}",
        stats.rejected(),
        stats.handled()
    );
    assert_eq!(
        stats.rejected(),
        2,
        "rejected once each, never requeued into a loop"
    );
    assert_eq!(stats.handled(), 1);
    assert!(
        app.next_handled(Duration::ZERO).await.is_none(),
        "nothing invalid reached the listener"
    );
}
