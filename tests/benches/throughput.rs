//! How fast registrar is on the machine it runs on, next to the limit password hashing sets.
//! Runs the release binary as a process against the real PostgreSQL and RabbitMQ, and prints
//! figures; it asserts nothing timed.
//!
//! `TEST_POSTGRES_URL=... TEST_AMQP_URL=... cargo bench -p e2e --bench throughput`
#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/api/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "../tests/api/running.rs"]
#[allow(dead_code)]
mod running;

use adapters::Argon2PasswordHasher;
use application::PasswordHasher;
use domain::Password;
use futures_util::StreamExt;
use helpers::{Options, TestApp, spawn_app_with, valid_registration};
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use measure::{hash_durations, ms, percentile};
use running::{Process, resident_kib_of};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long each load level runs.
const LEVEL: Duration = Duration::from_secs(6);
const BACKLOG: i64 = 100_000;

/// Environment of the measured process: no rate limits, no access log (the bench would spend
/// its CPU reading it), everything else as shipped.
const QUIET: [(&str, &str); 6] = [
    ("RUST_LOG", "warn,bootstrap::cli=info"),
    ("RATE_LIMIT_REGISTER_PER_MINUTE", "0"),
    ("RATE_LIMIT_LOGIN_PER_MINUTE", "0"),
    ("RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE", "0"),
    ("RATE_LIMIT_REFRESH_PER_MINUTE", "0"),
    ("HASH_QUEUE_SIZE", "16"),
];

struct Level {
    accepted: Vec<Duration>,
    refused: Vec<Duration>,
    other: usize,
    elapsed: Duration,
}

/// `workers` clients register unique users back to back for [`LEVEL`].
async fn registrations(app: &TestApp, address: &str, workers: usize, tag: &str) -> Level {
    let started = Instant::now();
    let serial = AtomicUsize::new(0);
    let results = Mutex::new((Vec::new(), Vec::new(), 0));
    futures_util::stream::iter(0..workers)
        .for_each_concurrent(workers, |_| async {
            while started.elapsed() < LEVEL {
                let n = serial.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let response = app
                    .client
                    .post(format!("{address}/auth/register"))
                    .json(&valid_registration(&format!("{tag}{n}")))
                    .send()
                    .await;
                let took = sent.elapsed();
                let mut results = results.lock().unwrap();
                match response.map(|r| r.status().as_u16()) {
                    Ok(201) => results.0.push(took),
                    Ok(503) => results.1.push(took),
                    _ => results.2 += 1,
                }
            }
        })
        .await;
    let (accepted, refused, other) = results.into_inner().unwrap();
    Level {
        accepted,
        refused,
        other,
        elapsed: started.elapsed(),
    }
}

#[tokio::main]
async fn main() {
    let cores = adapters::cores();
    println!("machine: {cores} cores; {}", std::env::consts::ARCH);

    // 1. The hash bound.
    let hasher = Argon2PasswordHasher::default();
    let hashes = hash_durations(&hasher, 30).await;
    let t_hash = percentile(&hashes, 0.5);
    let ceiling = cores as f64 / t_hash.as_secs_f64();
    println!(
        "1. argon2id hash: median {:.1} ms -> ceiling {ceiling:.0} registrations/s ({cores} cores / t_hash)",
        ms(t_hash)
    );
    let parallel_rate = parallel_hashes(&hasher, cores).await;
    println!(
        "   with all {cores} cores hashing at once: {parallel_rate:.0} hashes/s = {:.0}% of that ceiling (argon2id is memory-bound: cores share the memory bus and the cache)",
        100.0 * parallel_rate / ceiling
    );

    let app = spawn_app_with(Options {
        not_running: true,
        broker_behind_proxy: true,
        ..Options::default()
    })
    .await;
    // Measure the production topology: an event goes to the `log` and `audit` queues only.
    app.remove_test_queues().await;
    let direct_amqp = helpers::services().await.amqp_url;
    let mut env: Vec<(&str, &str)> = QUIET.to_vec();
    env.push(("AMQP_URL", &direct_amqp));
    let process = Process::start_with(&app, &env).await;
    let address = process.address.clone();
    wait_until_connected_to_the_broker(&app, &address).await;
    let idle_kib = process.resident_kib().unwrap_or_default();

    // 2. Registration throughput and latency by concurrency; memory under the heaviest load.
    println!("2. POST /auth/register, {LEVEL:?} per level, unique users:");
    let peak_kib = Arc::new(AtomicU64::new(idle_kib));
    let sampler = {
        let (peak, pid) = (peak_kib.clone(), process.pid());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                if let Some(kib) = resident_kib_of(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        })
    };
    let mut saturation: f64 = 0.0;
    let mut single_p50 = Duration::ZERO;
    for (label, workers) in [
        ("1", 1),
        ("cores", cores),
        ("4 x cores", 4 * cores),
        ("16 x cores", 16 * cores),
    ] {
        let before = CpuTicks::now(process.pid());
        let level = registrations(&app, &address, workers, &format!("c{workers}x")).await;
        let after = CpuTicks::now(process.pid());
        let rate = level.accepted.len() as f64 / level.elapsed.as_secs_f64();
        saturation = saturation.max(rate);
        if workers == 1 {
            single_p50 = percentile(&level.accepted, 0.5);
        }
        println!(
            "   concurrency {workers:>3} ({label}): {rate:6.1}/s = {:3.0}% of the ceiling; accepted p50 {:6.1} ms p99 {:6.1} ms; 503 {} (p50 {:.1} ms); other {}",
            100.0 * rate / ceiling,
            ms(percentile(&level.accepted, 0.5)),
            ms(percentile(&level.accepted, 0.99)),
            level.refused.len(),
            ms(percentile(&level.refused, 0.5)),
            level.other,
        );
        let accepted = level.accepted.len().max(1) as f64;
        println!(
            "      {}; service + PostgreSQL + RabbitMQ CPU per accepted registration {:.1} ms (of which one hash {:.1} ms)",
            after.shares_since(&before),
            1000.0 * after.server_seconds_since(&before) / accepted,
            ms(t_hash),
        );
    }
    sampler.abort();
    println!(
        "   targets: best rate {:.0}% of the ceiling (>= 90%), {:.0}% of the hash rate with every core hashing; p50 at concurrency 1 is t_hash + {:.1} ms (<= 5 ms); at 16 x cores accepted p99 < 1 s, the rest 503 quickly",
        100.0 * saturation / ceiling,
        100.0 * saturation / parallel_rate,
        ms(single_p50.saturating_sub(t_hash)),
    );

    // 3. Delivery latency at half the saturation rate: HTTP 201 received -> message received
    //    by a consumer of our own bound to the exchange.
    let rate = (saturation / 2.0).max(1.0);
    let (p50, p99, samples) = delivery_latency(&app, &address, rate).await;
    println!(
        "3. delivery latency at {rate:.0} registrations/s (half of saturation), HTTP response -> a consumer bound to the exchange: p50 {:.1} ms, p99 {:.1} ms ({samples} events; target p99 < 25 ms)",
        ms(p50),
        ms(p99)
    );

    // 5. GET /auth/me at concurrency 64.
    let before = CpuTicks::now(process.pid());
    let (me_rate, me_p99) = me_throughput(&app, &address).await;
    let after = CpuTicks::now(process.pid());
    // Printed after the drain, which needs a process of its own, so that the figures come in
    // the order of the issue that set the targets.
    let me_line = format!(
        "5. GET /auth/me at concurrency 64: {me_rate:.0} requests/s, p99 {:.1} ms (target >= 15,000/s)\n      {}",
        ms(me_p99),
        after.shares_since(&before),
    );
    let memory_line = format!(
        "6. resident memory: idle {:.1} MiB, peak under registration load {:.1} MiB (target idle < 60 MB)",
        idle_kib as f64 / 1024.0,
        peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    );
    process.terminate();
    drop(process);

    // 4. Outbox drain: the broker cut, a backlog inserted directly, the broker back.
    for batch_size in ["100", "1000"] {
        let (drain, cpu) = drain_backlog(&app, batch_size).await;
        println!(
            "4. outbox drain, OUTBOX_BATCH_SIZE={batch_size}: {BACKLOG} events in {:.1} s = {:.0} events/s (relay only: consumers off; target >= 5,000/s)\n      {cpu}",
            drain.as_secs_f64(),
            BACKLOG as f64 / drain.as_secs_f64()
        );
    }
    println!("{me_line}\n{memory_line}");
}

/// Hashes per second with `cores` hashes running at once, nothing else on the machine: the
/// most registrations per second the hash alone allows.
async fn parallel_hashes(hasher: &Argon2PasswordHasher, cores: usize) -> f64 {
    const EACH: usize = 20;
    let started = Instant::now();
    futures_util::stream::iter(0..cores)
        .for_each_concurrent(cores, |_| async {
            for _ in 0..EACH {
                hasher
                    .hash(Password::parse("correct horse battery staple").unwrap())
                    .await
                    .unwrap();
            }
        })
        .await;
    (cores * EACH) as f64 / started.elapsed().as_secs_f64()
}

/// Measuring starts once the relay and the listeners hold their broker connections.
async fn wait_until_connected_to_the_broker(app: &TestApp, address: &str) {
    let connected = helpers::poll_until(Duration::from_secs(30), || async {
        let ready: serde_json::Value = app
            .client
            .get(format!("{address}/health/ready"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (ready["broker"] == "connected").then_some(())
    })
    .await;
    assert!(connected.is_some(), "the service connected to the broker");
}

async fn delivery_latency(app: &TestApp, address: &str, rate: f64) -> (Duration, Duration, usize) {
    let channel = app.fresh_channel().await;
    let queue = format!("{}bench-latency", app.settings.amqp_queue_prefix);
    helpers::observe(&channel, &app.settings, &queue).await;
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let receiver = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let at = Instant::now();
                let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
                let id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
                received.lock().unwrap().insert(id, at);
            }
        })
    };

    // Open loop: requests leave at a fixed pace, whatever the answers do.
    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(period);
    let mut tasks = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(10) {
        ticker.tick().await;
        n += 1;
        let (client, answered, url) = (
            app.client.clone(),
            answered.clone(),
            format!("{address}/auth/register"),
        );
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&valid_registration(&format!("latency{n}")))
                .send()
                .await
                .unwrap();
            let at = Instant::now();
            if response.status() == 201 {
                let body: serde_json::Value = response.json().await.unwrap();
                let id = body["user"]["id"].as_str().unwrap().to_owned();
                answered.lock().unwrap().insert(id, at);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let all_arrived = helpers::poll_until(Duration::from_secs(30), || async {
        let received = received.lock().unwrap();
        answered
            .lock()
            .unwrap()
            .keys()
            .all(|id| received.contains_key(id))
            .then_some(())
    })
    .await;
    assert!(
        all_arrived.is_some(),
        "every registered user's event arrived"
    );
    receiver.abort();
    let answered = answered.lock().unwrap();
    let received = received.lock().unwrap();
    // A message may arrive before the HTTP answer does (the relay is woken by the commit):
    // that counts as zero.
    let latencies: Vec<Duration> = answered
        .iter()
        .filter_map(|(id, at)| {
            let got = received.get(id)?;
            Some(got.saturating_duration_since(*at))
        })
        .collect();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
    )
}

async fn me_throughput(app: &TestApp, address: &str) -> (f64, Duration) {
    let session: serde_json::Value = app
        .client
        .post(format!("{address}/auth/register"))
        .json(&valid_registration("me-bench"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["accessToken"].as_str().unwrap().to_owned();
    let latencies = Mutex::new(Vec::new());
    let started = Instant::now();
    futures_util::stream::iter(0..64)
        .for_each_concurrent(64, |_| async {
            let mut mine = Vec::new();
            while started.elapsed() < LEVEL {
                let sent = Instant::now();
                let response = app
                    .client
                    .get(format!("{address}/auth/me"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                mine.push(sent.elapsed());
            }
            latencies.lock().unwrap().extend(mine);
        })
        .await;
    let latencies = latencies.into_inner().unwrap();
    (
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        percentile(&latencies, 0.99),
    )
}

async fn drain_backlog(app: &TestApp, batch_size: &str) -> (Duration, String) {
    let proxy = app.proxy.as_ref().expect("the broker is behind the proxy");
    let mut env: Vec<(&str, &str)> = QUIET.to_vec();
    env.push(("CONSUMER_ENABLED", "false"));
    env.push(("OUTBOX_BATCH_SIZE", batch_size));
    let process = Process::start_with(app, &env).await;
    app.wait_for_empty_outbox(Duration::from_secs(60)).await;
    proxy.cut();
    app.insert_pending_events(BACKLOG).await;
    let before = CpuTicks::now(process.pid());
    let started = Instant::now();
    proxy.restore().await;
    let drained = helpers::poll_until(Duration::from_secs(600), || async {
        (app.pending_outbox_events().await == 0).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let cpu = CpuTicks::now(process.pid()).shares_since(&before);
    assert!(drained.is_some(), "the backlog drained");
    process.terminate();
    drop(process);
    for queue in [
        app.queue_of("log"),
        app.queue_of("audit"),
        app.queue_of("recorder"),
    ] {
        let _ = app
            .fresh_channel()
            .await
            .queue_purge(
                queue.as_str().into(),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await;
    }
    (elapsed, cpu)
}

/// CPU time spent on the machine, by who spent it, read from `/proc` (Linux): where the cores
/// went during a measurement, to tell what limits it.
#[derive(Clone, Copy, Default)]
struct CpuTicks {
    service: u64,
    postgres: u64,
    rabbitmq: u64,
    load: u64,
    other: u64,
    total: u64,
}

impl CpuTicks {
    fn now(service_pid: u32) -> Self {
        let mut ticks = Self {
            total: machine_ticks(),
            ..Self::default()
        };
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return ticks;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some((name, used)) = process_ticks(pid) else {
                continue;
            };
            let bucket = match name.as_str() {
                _ if pid == service_pid => &mut ticks.service,
                _ if pid == me => &mut ticks.load,
                "postgres" => &mut ticks.postgres,
                "beam.smp" | "erl_child_setup" | "epmd" | "inet_gethost" => &mut ticks.rabbitmq,
                _ => &mut ticks.other,
            };
            *bucket += used;
        }
        ticks
    }

    /// Each party's share of the machine's capacity since `before`, as a line.
    fn shares_since(&self, before: &Self) -> String {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let share = |now: u64, then: u64| 100.0 * now.saturating_sub(then) as f64 / total;
        let busy = self.service + self.postgres + self.rabbitmq + self.load + self.other;
        let busy_before =
            before.service + before.postgres + before.rabbitmq + before.load + before.other;
        format!(
            "CPU: service {:.0}%, PostgreSQL {:.0}%, RabbitMQ {:.0}%, load generator {:.0}%, other {:.0}%, idle {:.0}%",
            share(self.service, before.service),
            share(self.postgres, before.postgres),
            share(self.rabbitmq, before.rabbitmq),
            share(self.load, before.load),
            share(self.other, before.other),
            (100.0 - share(busy, busy_before)).max(0.0),
        )
    }

    /// CPU seconds the service, PostgreSQL and RabbitMQ spent since `before`.
    fn server_seconds_since(&self, before: &Self) -> f64 {
        let used = (self.service + self.postgres + self.rabbitmq)
            .saturating_sub(before.service + before.postgres + before.rabbitmq);
        used as f64 / CLOCK_TICKS_PER_SECOND
    }
}

/// `USER_HZ`, the unit of `/proc` CPU times: 100 on every Linux architecture in use.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// A process's name and its user + system time, in clock ticks.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces or parentheses: cut at the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid, ..., utime (14th field of the line), stime (15th).
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((name, user + system))
}

/// All the clock ticks of every core, busy or idle, since boot.
fn machine_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?;
            Some(
                line.split_whitespace()
                    .skip(1)
                    // user .. steal; guest time is already counted in user.
                    .take(8)
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum(),
            )
        })
        .unwrap_or_default()
}
