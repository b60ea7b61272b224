//! Password hashing with argon2id, off the async runtime.
use anyhow::Context;
use application::PasswordHasher;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use domain::{Password, PasswordHash};
use std::sync::{Arc, OnceLock};

/// Argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane: OWASP's minimum).
#[derive(Clone, Debug, Default)]
pub struct Argon2PasswordHasher {
    /// Verified against when an account does not exist, so that sign-in costs the same.
    dummy: Arc<OnceLock<String>>,
}

impl Argon2PasswordHasher {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn dummy_hash(&self) -> String {
        self.dummy
            .get_or_init(|| {
                Argon2::default()
                    .hash_password(b"registrar dummy password")
                    .expect("hashing a constant with default parameters succeeds")
                    .to_string()
            })
            .clone()
    }
}

/// A hash costs tens of milliseconds of CPU: on a runtime worker it would stall every other
/// request scheduled there, so it runs on the blocking pool.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("password hashing task panicked")
}

impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: Password) -> anyhow::Result<PasswordHash> {
        off_the_runtime(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))
        })
        .await?
    }

    async fn verify(&self, password: Password, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let phc = hash.map_or_else(|| self.dummy_hash(), |hash| hash.as_ref().to_owned());
        off_the_runtime(move || {
            let parsed = Phc::new(&phc)
                .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
            let matches = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(raw: &str) -> Password {
        Password::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn produces_a_salted_argon2id_hash_that_verifies() {
        let hasher = Argon2PasswordHasher::new();
        let first = hasher.hash(password("correct horse")).await.unwrap();
        let second = hasher.hash(password("correct horse")).await.unwrap();

        assert!(first.as_ref().starts_with("$argon2id$v=19$"));
        assert_ne!(first, second, "every hash has its own salt");
        assert!(
            hasher
                .verify(password("correct horse"), Some(first.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("wrong horse!"), Some(first))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn without_an_account_nothing_verifies_not_even_the_dummy_password() {
        let hasher = Argon2PasswordHasher::new();
        assert!(
            !hasher
                .verify(password("registrar dummy password"), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_runtime_free() {
        // On a single-threaded runtime, a hash computed inline would starve this ticker for
        // the whole hash; computed on the blocking pool, the ticker keeps running.
        let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        Argon2PasswordHasher::new()
            .hash(password("correct horse"))
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
