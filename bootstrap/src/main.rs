//! `registrar`: see `bootstrap::cli` and the README.
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bootstrap::cli::main().await
}
