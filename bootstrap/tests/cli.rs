//! The `registrar` binary as an operator meets it.
use std::process::Command;

#[test]
fn an_unreachable_database_stops_start_up_with_one_line_naming_the_host() {
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/registrar")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "off")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line, no backtrace: {stderr}");
    assert!(
        lines[0].starts_with("error: cannot reach PostgreSQL at 127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_setting_stops_start_up_with_one_line_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .env("CONSUMER_PREFETCH", "many")
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: setting CONSUMER_PREFETCH is invalid"),
        "{stderr}"
    );
}

#[test]
fn the_openapi_subcommand_prints_the_committed_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .arg("openapi")
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), committed);
}

#[test]
fn a_config_file_with_a_misspelt_setting_stops_start_up_with_one_line() {
    let path = std::env::temp_dir().join(format!("registrar-cli-{}.toml", std::process::id()));
    std::fs::write(&path, "DATABASE_URI = \"postgres://nowhere\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--config", path.to_str().unwrap(), "outbox", "status"])
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs");
    std::fs::remove_file(&path).unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: settings file {} ", path.display()))
            && stderr.contains(r#"sets "DATABASE_URI", which is no setting"#),
        "{stderr}"
    );
}

#[test]
fn an_invalid_log_format_stops_start_up_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .env("LOG_FORMAT", "xml")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "error: setting LOG_FORMAT is invalid: \"xml\": must be text or json"
    );
}
