//! `/metrics`: what an operator graphs, read from a real run.
use crate::helpers::{TestApp, poll_until, spawn_app, valid_registration};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.unwrap()
}

/// The value of the series written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_registrations_hashes_events_and_listeners() {
    let app = spawn_app().await;
    app.registered("alice").await;
    app.registered("bob").await;
    assert_eq!(
        app.register(&valid_registration("alice")).await.status(),
        409
    );
    let _ = app.client.get(app.url("/no/such/path")).send().await;

    let settled = poll_until(WAIT, || async {
        let text = scrape(&app).await;
        let done = value(&text, "registrar_events_published_total") == Some(2.0)
            && value(
                &text,
                r#"registrar_listener_events_handled_total{listener="audit"}"#,
            ) == Some(2.0);
        done.then_some(text)
    })
    .await;
    let text = settled.expect("events published and handled show up");
    let series = |series: &str| value(&text, series);
    assert_eq!(
        series(
            r#"registrar_http_requests_total{route="/auth/register",method="POST",status="201"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        series(
            r#"registrar_http_requests_total{route="/auth/register",method="POST",status="409"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series(r#"registrar_http_requests_total{route="other",method="GET",status="404"}"#),
        Some(1.0),
        "unknown paths share one label"
    );
    assert_eq!(series("registrar_registrations_total"), Some(2.0));
    assert!(
        series(r#"registrar_password_hash_duration_seconds_count{operation="hash"}"#)
            .is_some_and(|count| count >= 2.0),
        "{text}"
    );
    assert_eq!(series("registrar_outbox_pending_events"), Some(0.0));
    assert_eq!(series("registrar_broker_connected"), Some(1.0));
    assert_eq!(series("registrar_events_returned_total"), Some(0.0));
    assert_eq!(
        series(r#"registrar_listener_prefetch{listener="log"}"#),
        Some(32.0)
    );
    assert_eq!(
        series(r#"registrar_listener_events_dead_lettered_total{listener="log"}"#),
        Some(0.0)
    );
    assert!(
        text.contains(
            r#"registrar_http_request_duration_seconds_bucket{le="0.001",route="/auth/register""#
        ),
        "latency histograms are exported: {text}"
    );
}

#[tokio::test]
async fn a_made_up_method_is_counted_as_other_and_adds_no_series_of_its_own() {
    let app = spawn_app().await;
    for n in 0..3 {
        let method = reqwest::Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap();
        let answer = app
            .client
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405);
    }
    let text = scrape(&app).await;
    assert!(!text.contains("BREW"), "a client chose a label value");
    let other = text
        .lines()
        .find(|line| {
            line.starts_with("registrar_http_requests_total")
                && line.contains("method=\"other\"")
                && line.contains("status=\"405\"")
        })
        .expect("the made-up methods are counted as other");
    assert!(other.ends_with(" 3"), "{other}");
}
