//! Prints how long sign-up and sign-in take against the real service, and whether sign-in
//! time tells an unknown account from a wrong password. Asserts nothing: figures, not a gate.
//!
//! `TEST_POSTGRES_URL=... TEST_AMQP_URL=... cargo bench -p e2e --bench auth_timing`
#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/api/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use adapters::Argon2PasswordHasher;
use measure::{hash_durations, ms, percentile};
use std::time::{Duration, Instant};

const ROUNDS: usize = 40;

async fn timed<F: std::future::Future<Output = reqwest::Response>>(
    request: F,
    expected: u16,
) -> Duration {
    let started = Instant::now();
    let response = request.await;
    let elapsed = started.elapsed();
    assert_eq!(
        response.status(),
        expected,
        "unexpected answer while measuring"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let hashes = hash_durations(&Argon2PasswordHasher::default(), ROUNDS).await;

    let app = helpers::spawn_app().await;
    let mut registrations = Vec::new();
    for n in 0..ROUNDS {
        registrations.push(
            timed(
                app.register(&helpers::valid_registration(&format!("user{n}"))),
                201,
            )
            .await,
        );
    }
    let (mut wrong_password, mut unknown_user) = (Vec::new(), Vec::new());
    for n in 0..ROUNDS {
        // Interleaved, so that drift on the machine affects both alike.
        unknown_user.push(timed(app.login(&format!("nobody{n}"), "not the password"), 401).await);
        wrong_password.push(timed(app.login("user0", "not the password"), 401).await);
    }

    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let hash = percentile(&hashes, 0.5);
    println!("machine: {cores} cores; {ROUNDS} rounds each, sequential");
    println!(
        "argon2id hash (default parameters): median {:.1} ms -> ceiling {:.0} registrations/s",
        ms(hash),
        cores as f64 / hash.as_secs_f64()
    );
    println!(
        "POST /auth/register: median {:.1} ms, p90 {:.1} ms",
        ms(percentile(&registrations, 0.5)),
        ms(percentile(&registrations, 0.9))
    );
    let (wrong, unknown) = (
        percentile(&wrong_password, 0.5),
        percentile(&unknown_user, 0.5),
    );
    println!(
        "POST /auth/login, wrong password: median {:.1} ms, p90 {:.1} ms",
        ms(wrong),
        ms(percentile(&wrong_password, 0.9))
    );
    println!(
        "POST /auth/login, unknown account: median {:.1} ms, p90 {:.1} ms",
        ms(unknown),
        ms(percentile(&unknown_user, 0.9))
    );
    println!("difference of medians: {:.2} ms", ms(wrong) - ms(unknown));
}
