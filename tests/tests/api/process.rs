//! The real binary as a process: JSON logs that join a request to its event, and a SIGTERM
//! under load that loses no accepted registration's event.
use crate::helpers::{
    JWT_SECRET, Options, TestApp, poll_until, spawn_app_with, valid_registration,
};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A running `registrar` process and the JSON log lines it has written so far.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    address: String,
}

impl Process {
    /// Starts the binary on the test's database and broker names, with JSON logs.
    async fn start(app: &TestApp) -> Self {
        let settings = &app.settings;
        let mut child = Command::new(env!("CARGO_BIN_EXE_registrar-e2e"))
            .env_clear()
            .env("DATABASE_URL", &settings.database_url)
            .env("AMQP_URL", &settings.amqp_url)
            .env("AMQP_EXCHANGE", &settings.amqp_exchange)
            .env("AMQP_QUEUE", &settings.amqp_queue)
            .env("AMQP_QUEUE_PREFIX", &settings.amqp_queue_prefix)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", JWT_SECRET)
            .env("RATE_LIMIT_REGISTER_PER_MINUTE", "0")
            .env("HASH_QUEUE_SIZE", "64")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
                collected.lock().unwrap().push(value);
            }
        });
        let mut process = Self {
            child,
            lines,
            address: String::new(),
        };
        let listening = process
            .wait_for_line(|line| {
                line["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("registrar is listening"))
            })
            .await;
        process.address = format!(
            "http://{}",
            listening["fields"]["address"].as_str().expect("an address")
        );
        process
    }

    async fn wait_for_line(&self, matches: impl Fn(&Value) -> bool) -> Value {
        poll_until(WAIT, || async {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .find(|line| matches(line))
                .cloned()
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no such log line; the process wrote:\n{:#?}",
                self.lines.lock().unwrap()
            )
        })
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit; true when it exited successfully.
    async fn exited_cleanly(&mut self) -> bool {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not exit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
