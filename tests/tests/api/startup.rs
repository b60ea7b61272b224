//! Start-up failures are one clear line, not a backtrace.
use bootstrap::{Application, Settings};

#[tokio::test]
async fn an_unreachable_database_is_named_in_one_line() {
    let settings = Settings {
        // Nothing listens on port 1.
        database_url: "postgres://postgres@127.0.0.1:1/registrar".into(),
        http_addr: "127.0.0.1:0".into(),
        ..Settings::default()
    };
    let Err(error) = Application::build(settings).await else {
        panic!("start-up must fail without a database");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test]
async fn two_listeners_on_one_queue_stop_start_up() {
    let app = crate::helpers::spawn_app().await;
    // The log listener's queue would be the audit listener's queue, retry queue or dead-letter
    // queue.
    for audit_queue in ["audit", "audit.retry", "audit.dlq"] {
        let shared = format!("{}{audit_queue}", app.settings.amqp_queue_prefix);
        let settings = Settings {
            amqp_queue: shared.clone(),
            ..app.settings.clone()
        };
        let Err(error) = Application::build(settings).await else {
            panic!("start-up must fail when the log listener's queue is {shared}");
        };
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!(
                r#"listeners "log" and "audit" would share queue "{shared}""#
            )),
            "{message}"
        );
        assert!(message.contains("AMQP_QUEUE"), "{message}");
    }
}
