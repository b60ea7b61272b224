//! The `registrar` binary, built inside the test package so that end-to-end tests can run it
//! as a real process (signals, exit codes, log output): `main` is the same one line.
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bootstrap::cli::main().await
}
