//! The real binary as a process: JSON logs that join a request to its event, and a SIGTERM
//! under load that loses no accepted registration's event.
use crate::helpers::{Options, poll_until, spawn_app_with, valid_registration};
use crate::running::Process;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A field of any span enclosing a JSON log line (the innermost that has it).
fn span_field<'a>(line: &'a Value, field: &str) -> &'a Value {
    line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().rev().find_map(|span| span.get(field)))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_trace_from_the_request_to_the_listener() {
    let app = spawn_app_with(Options {
        not_running: true,
        ..Options::default()
    })
    .await;
    let mut process = Process::start(&app).await;
    println!(
        "resident memory at start: {} KiB (debug build)",
        process.resident_kib().expect("Linux /proc")
    );
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = app
        .client
        .post(format!("{}/auth/register", process.address))
        .header("x-request-id", "join-me-42")
        .header("traceparent", traceparent)
        .json(&valid_registration("traced"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "join-me-42");

    // The message carries both; its span is this service's own within the client's trace.
    let published = app.next_published(WAIT).await.expect("published");
    let headers = published.properties.headers().clone().expect("headers");
    let header = |name: &str| match headers.inner().get(name).expect(name) {
        lapin::types::AMQPValue::LongString(text) => text.to_string(),
        other => panic!("{name} is {other:?}"),
    };
    assert!(header("x-request-id").contains("join-me-42"));
    assert!(header("traceparent").contains("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert!(
        !header("traceparent").contains("00f067aa0ba902b7"),
        "a span of our own"
    );

    // The registration and the listeners' handling log the same request id and trace id.
    let registered = process
        .wait_for_line(|line| line["fields"]["message"] == "user registered")
        .await;
    assert_eq!(
        span_field(&registered, "request_id"),
        "join-me-42",
        "{registered}"
    );
    let consumed = process
        .wait_for_line(|line| line["fields"]["message"] == "consumed a user.registered event")
        .await;
    assert_eq!(
        span_field(&consumed, "request_id"),
        "join-me-42",
        "{consumed}"
    );
    assert_eq!(
        span_field(&consumed, "trace_id"),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "{consumed}"
    );
    assert_eq!(span_field(&consumed, "listener"), "log");

    process.terminate();
    assert!(process.exited_cleanly().await);
    process
        .wait_for_line(|line| line["fields"]["message"] == "stopped")
        .await;
}

#[tokio::test]
async fn sigterm_under_load_loses_no_accepted_registration_s_event() {
    let app = spawn_app_with(Options {
        not_running: true,
        ..Options::default()
    })
    .await;
    let mut process = Process::start(&app).await;
    let address = process.address.clone();
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let load = {
        let (client, accepted) = (app.client.clone(), accepted.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..400)
                .for_each_concurrent(8, |n| {
                    let (client, accepted, address) = (&client, &accepted, &address);
                    async move {
                        let sent = client
                            .post(format!("{address}/auth/register"))
                            .json(&valid_registration(&format!("load{n}")))
                            .send()
                            .await;
                        if let Ok(response) = sent
                            && response.status() == 201
                        {
                            let body: Value = response.json().await.unwrap();
                            let id = body["user"]["id"].as_str().unwrap().to_owned();
                            accepted.lock().unwrap().insert(id);
                        }
                    }
                })
                .await;
        })
    };
    let busy = poll_until(WAIT, || async {
        (accepted.lock().unwrap().len() >= 40).then_some(())
    })
    .await;
    assert!(busy.is_some(), "the load got going");
    process.terminate();
    assert!(process.exited_cleanly().await, "exit code 0 after SIGTERM");
    load.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();

    // Every accepted registration committed its event; what the relay marked published was
    // really delivered; what it had not reached yet waits in the outbox.
    let outbox_users: BTreeSet<String> =
        sqlx::query_scalar("SELECT payload->'data'->>'id' FROM outbox")
            .fetch_all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(
        accepted.is_subset(&outbox_users),
        "{} accepted registrations have no event",
        accepted.difference(&outbox_users).count()
    );
    let published: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let observed: BTreeSet<String> = app
        .drain_published()
        .await
        .iter()
        .map(|message| message.message_id())
        .collect();
    println!(
        "accepted {}, events in the outbox {}, published before the stop {published}, observed {}",
        accepted.len(),
        outbox_users.len(),
        observed.len()
    );
    assert_eq!(
        observed.len() as i64,
        published,
        "marked published = delivered"
    );

    // The next start delivers whatever was left.
    let mut again = Process::start(&app).await;
    app.wait_for_empty_outbox(WAIT).await;
    again.terminate();
    assert!(again.exited_cleanly().await);
    let delivered: BTreeSet<String> = observed
        .into_iter()
        .chain(app.drain_published().await.iter().map(|m| m.message_id()))
        .collect();
    assert_eq!(delivered.len(), outbox_users.len(), "every event delivered");
}

#[tokio::test]
async fn every_answer_names_its_request_and_unusable_ids_are_replaced() {
    let app = crate::helpers::spawn_app().await;
    let generated = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let refused = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert_ne!(refused.headers()["x-request-id"], "two words");

    // Events of requests without a trace still carry a fresh, valid one.
    app.registered("untraced").await;
    let published = app.next_published(WAIT).await.expect("published");
    let headers = published.properties.headers().clone().expect("headers");
    let Some(lapin::types::AMQPValue::LongString(traceparent)) = headers.inner().get("traceparent")
    else {
        panic!("no traceparent")
    };
    let traceparent = traceparent.to_string();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
}

#[tokio::test]
async fn sigterm_during_a_backlog_stops_the_relay_after_its_batch() {
    let app = spawn_app_with(Options {
        not_running: true,
        ..Options::default()
    })
    .await;
    // Small batches: draining this backlog would take far longer than the shutdown deadline.
    const BACKLOG: i64 = 20_000;
    app.insert_pending_events(BACKLOG).await;
    let mut process = Process::start_with(
        &app,
        &[
            ("OUTBOX_BATCH_SIZE", "5"),
            ("CONSUMER_ENABLED", "false"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "5"),
        ],
    )
    .await;
    let draining = poll_until(WAIT, || async {
        (app.pending_outbox_events().await < BACKLOG).then_some(())
    })
    .await;
    assert!(draining.is_some(), "the relay got going");

    process.terminate();
    assert!(process.exited_cleanly().await, "exit code 0 after SIGTERM");
    let pending = app.pending_outbox_events().await;
    println!("backlog {BACKLOG}: {pending} still pending after SIGTERM");
    assert!(
        pending > 0,
        "the relay stopped instead of draining the backlog"
    );
    process
        .wait_for_line(|line| line["fields"]["message"] == "stopped")
        .await;
    let late = process.lines_matching(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("did not stop in time"))
    });
    assert_eq!(late, 0, "every task stopped within the deadline");
    // Nothing claimed was left unmarked: a fresh relay may take every pending event at once.
    let leased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND claimed_until > now()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(leased, 0, "no batch left claimed");
}
