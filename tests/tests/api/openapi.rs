//! The committed `openapi.json` is what the code generates, and what the service serves.
use crate::helpers::spawn_app;
use std::path::PathBuf;

fn committed_spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")
}

#[test]
fn the_committed_openapi_json_matches_the_code() {
    let generated = format!("{}\n", bootstrap::http::openapi_spec());
    let path = committed_spec_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `cargo run -q -p bootstrap -- openapi > openapi.json` \
         (or UPDATE_OPENAPI=1 cargo test -p e2e openapi)"
    );
}

#[tokio::test]
async fn the_service_serves_the_spec_and_swagger_ui() {
    let app = spawn_app().await;
    let served: serde_json::Value = app.get_json("/openapi.json").await;
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_spec_path()).unwrap()).unwrap();
    assert_eq!(served, committed);
    assert!(served["paths"]["/auth/register"]["post"].is_object());

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
}
