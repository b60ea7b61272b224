//! What both benchmarks measure the same way: percentiles, milliseconds, one hash.
use adapters::Argon2PasswordHasher;
use application::PasswordHasher;
use domain::Password;
use std::time::{Duration, Instant};

/// The `p` quantile (0 to 1) of `samples`, zero when there are none.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// How long each of `rounds` argon2id hashes took, one after another.
pub async fn hash_durations(hasher: &Argon2PasswordHasher, rounds: usize) -> Vec<Duration> {
    let mut durations = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        hasher
            .hash(Password::parse("correct horse battery staple").unwrap())
            .await
            .unwrap();
        durations.push(started.elapsed());
    }
    durations
}
