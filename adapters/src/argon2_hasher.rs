//! Password hashing with argon2id, off the async runtime.
use anyhow::Context;
use application::PasswordHasher;
use argon2::Argon2;
use argon2::password_hash::PasswordHasher as _;
use domain::{Password, PasswordHash};

/// Argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane: OWASP's minimum).
#[derive(Clone, Copy, Debug, Default)]
pub struct Argon2PasswordHasher;

impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: Password) -> anyhow::Result<PasswordHash> {
        // A hash costs tens of milliseconds of CPU: on a runtime worker it would stall every
        // other request scheduled there, so it runs on the blocking pool.
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))
        })
        .await
        .context("password hashing task panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash as Phc;

    #[tokio::test]
    async fn produces_a_salted_argon2id_hash_that_verifies() {
        let password = Password::parse("correct horse").unwrap();
        let first = Argon2PasswordHasher.hash(password.clone()).await.unwrap();
        let second = Argon2PasswordHasher.hash(password).await.unwrap();

        assert!(first.as_ref().starts_with("$argon2id$v=19$"));
        assert_ne!(first, second, "every hash has its own salt");
        let parsed = Phc::new(first.as_ref()).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_runtime_free() {
        // On a single-threaded runtime, a hash computed inline would starve this ticker for
        // the whole hash; computed on the blocking pool, the ticker keeps running.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        Argon2PasswordHasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
        ticker.abort();
        assert!(
            during > 10,
            "the runtime ran only {during} other steps while hashing"
        );
    }
}
