//! The event contract other teams build on (`docs/`): the JSON Schema of the message body and
//! the AsyncAPI document, checked against what the service really publishes and is configured
//! with, so that neither can drift from the code unnoticed.
use crate::helpers::{TestApp, spawn_app};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/events/user.registered.schema.json"
);
const ASYNCAPI_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.json");

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// The committed schema, asserting formats (`uuid`, `date-time`) too, which draft 2020-12 only
/// annotates by default. `idn-email` is not known without jsonschema's `idna` feature and is
/// skipped; the email's pattern still applies.
fn committed_schema() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&read_json(Path::new(SCHEMA_PATH)))
        .expect("the committed schema compiles")
}

/// Why `body` breaks the schema, one line per error; empty when it is valid.
fn violations(schema: &jsonschema::Validator, body: &Value) -> Vec<String> {
    schema
        .iter_errors(body)
        .map(|error| format!("at {:?}: {error}", error.instance_path().to_string()))
        .collect()
}

/// The body of the next message the service publishes, checked to be about `username`.
async fn next_published_body(app: &TestApp, username: &str) -> Value {
    let body = app
        .next_published(WAIT)
        .await
        .expect("the event is published")
        .json();
    assert_eq!(body["data"]["username"], username, "published: {body}");
    body
}

#[tokio::test]
async fn published_user_registered_messages_match_the_committed_schema() {
    let app = spawn_app().await;
    let schema = committed_schema();
    for tag in ["alice", "bob.smith", "carol-99"] {
        app.registered(tag).await;
        let body = next_published_body(&app, tag).await;
        let errors = violations(&schema, &body);
        assert!(
            errors.is_empty(),
            "{body}\nbreaks the schema:\n{}",
            errors.join("\n")
        );
    }
}

#[tokio::test]
async fn a_published_internationalised_email_matches_the_committed_schema() {
    // The service accepts non-ASCII addresses, which JSON Schema's `email` format (RFC 5321,
    // ASCII) refuses: the schema says `idn-email`. This keeps it from being "fixed" back.
    let app = spawn_app().await;
    let response = app
        .register(&json!({
            "email": "zoë@exämple.com",
            "username": "zoe",
            "password": "correct horse battery staple",
        }))
        .await;
    assert_eq!(response.status(), 201);
    let body = next_published_body(&app, "zoe").await;
    assert_eq!(body["data"]["email"], "zoë@exämple.com");
    let errors = violations(&committed_schema(), &body);
    assert!(
        errors.is_empty(),
        "{body}\nbreaks the schema:\n{}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn the_schema_rejects_broken_bodies_and_accepts_extra_fields() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let published = next_published_body(&app, "alice").await;
    let schema = committed_schema();
    assert!(violations(&schema, &published).is_empty(), "{published}");

    let altered = |change: &dyn Fn(&mut Value)| {
        let mut body = published.clone();
        change(&mut body);
        body
    };
    let timestamp = published["timestamp"].as_str().unwrap().to_owned();
    let whole_seconds = format!("{}Z", &timestamp[..19]);
    assert!(
        timestamp.len() == 24 && whole_seconds.len() == 20,
        "{timestamp}"
    );

    let broken = [
        (
            "no data.email",
            altered(&|body| {
                body["data"].as_object_mut().unwrap().remove("email");
            }),
        ),
        (
            "timestamp without milliseconds",
            altered(&|body| body["timestamp"] = json!(whole_seconds)),
        ),
        (
            "another event type",
            altered(&|body| body["event"] = json!("user.deleted")),
        ),
    ];
    for (why, body) in broken {
        assert!(
            !violations(&schema, &body).is_empty(),
            "must be rejected ({why}): {body}"
        );
    }

    let extended = altered(&|body| body["traceId"] = json!("4bf92f3577b34da6a3ce929d0e0e4736"));
    let errors = violations(&schema, &extended);
    assert!(
        errors.is_empty(),
        "an extra top-level field must be accepted: {extended}\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_asyncapi_document_points_at_the_schema_and_names_the_default_topology() {
    let document = read_json(Path::new(ASYNCAPI_PATH));
    assert_eq!(document["asyncapi"], "3.0.0");
    let resolve = |reference: &Value| -> Value {
        let pointer = reference["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .unwrap_or_else(|| panic!("not a local $ref: {reference}"));
        document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref: {reference}"))
            .clone()
    };

    let message = &document["components"]["messages"]["UserRegistered"];
    let payload = message["payload"]["$ref"]
        .as_str()
        .expect("the payload is a $ref");
    assert_eq!(payload, "./events/user.registered.schema.json");
    let schema_file = Path::new(ASYNCAPI_PATH).parent().unwrap().join(payload);
    assert_eq!(
        std::fs::canonicalize(&schema_file).expect("the referenced schema exists"),
        std::fs::canonicalize(SCHEMA_PATH).unwrap()
    );
    assert_eq!(
        read_json(&schema_file)["properties"]["event"]["const"],
        "user.registered"
    );

    let operations = |action: &str| -> Vec<Value> {
        let operations = document["operations"].as_object().expect("operations");
        operations
            .values()
            .filter(|op| op["action"] == action)
            .cloned()
            .collect()
    };
    let defaults = bootstrap::Settings::default();

    let sends = operations("send");
    assert_eq!(sends.len(), 1, "one publisher");
    let published_to = resolve(&sends[0]["channel"]);
    let amqp = &published_to["bindings"]["amqp"];
    assert_eq!(amqp["is"], "routingKey");
    assert_eq!(amqp["exchange"]["name"], defaults.amqp_exchange.as_str());
    assert_eq!(amqp["exchange"]["type"], "topic");
    assert_eq!(amqp["exchange"]["durable"], true);
    assert_eq!(
        published_to["address"],
        defaults.amqp_routing_key.as_str(),
        "the address of a routingKey channel is the routing key"
    );

    // One receive operation per built-in listener, each on the queue the service declares.
    let consumed_from: Vec<String> = operations("receive")
        .iter()
        .map(|operation| {
            let channel = resolve(&operation["channel"]);
            assert_eq!(channel["bindings"]["amqp"]["is"], "queue");
            channel["bindings"]["amqp"]["queue"]["name"]
                .as_str()
                .expect("a queue name")
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = [("log", "#"), ("audit", "#")]
        .iter()
        .map(|(name, pattern)| defaults.listener_queue(name, &[pattern]).name)
        .collect();
    assert_eq!(consumed_from, expected);
}

#[tokio::test]
async fn published_headers_match_the_asyncapi_document() {
    let app = spawn_app().await;
    app.registered("alice").await;
    let published = app.next_published(WAIT).await.expect("the event");
    let headers: serde_json::Map<String, Value> = published
        .properties
        .headers()
        .clone()
        .expect("headers")
        .inner()
        .iter()
        .map(|(name, value)| {
            let value = match value {
                lapin::types::AMQPValue::LongString(text) => Value::from(text.to_string()),
                other => Value::from(format!("{other:?}")),
            };
            (name.to_string(), value)
        })
        .collect();
    let document = read_json(Path::new(ASYNCAPI_PATH));
    let schema = jsonschema::options()
        .should_validate_formats(true)
        .build(&document["components"]["messages"]["UserRegistered"]["headers"])
        .expect("the headers schema compiles");
    let headers = Value::Object(headers);
    let errors = violations(&schema, &headers);
    assert!(
        errors.is_empty(),
        "{headers}\nbreaks the headers schema:\n{}",
        errors.join("\n")
    );
    assert!(
        !violations(&schema, &json!({"cloudEvents:id": "x"})).is_empty(),
        "the headers schema is not vacuous"
    );
}
