//! The service's binary as a real process, on a test's database and broker names.
use crate::helpers::{JWT_SECRET, TestApp, poll_until};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A running `registrar` process and the JSON log lines it has written so far.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    pub address: String,
}

impl Process {
    /// Starts the binary on the test's database and broker names, with JSON logs.
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with(app, &[]).await
    }

    /// As [`Process::start`], with more (or overriding) environment variables.
    pub async fn start_with(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let settings = &app.settings;
        let mut command = Command::new(env!("CARGO_BIN_EXE_registrar-e2e"));
        let mut child = command
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
            .envs(env.iter().copied())
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

    pub async fn wait_for_line(&self, matches: impl Fn(&Value) -> bool) -> Value {
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

    /// How many of the lines written so far match.
    pub fn lines_matching(&self, matches: impl Fn(&Value) -> bool) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| matches(line))
            .count()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit; true when it exited successfully.
    pub async fn exited_cleanly(&mut self) -> bool {
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

    /// Used by the throughput benchmark, which shares this file, to sample memory.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, from /proc (Linux), in KiB.
    pub fn resident_kib(&self) -> Option<u64> {
        resident_kib_of(self.child.id())
    }
}

/// Resident memory of process `pid`, from /proc (Linux), in KiB.
pub fn resident_kib_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
