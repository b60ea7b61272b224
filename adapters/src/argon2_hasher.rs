//! Password hashing with argon2id, off the async runtime.
use anyhow::Context;
use application::PasswordHasher;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use domain::{Password, PasswordHash};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane: OWASP's minimum).
#[derive(Clone, Debug)]
pub struct Argon2PasswordHasher {
    /// Verified against when an account does not exist, so that sign-in costs the same.
    dummy: Arc<OnceLock<String>>,
    /// One hash per core at a time. More would not finish sooner, and each holds 19 MiB:
    /// unbounded, a burst of a few hundred sign-ups would take gigabytes.
    permits: Arc<Semaphore>,
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Argon2PasswordHasher {
    #[must_use]
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            dummy: Arc::new(OnceLock::new()),
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Waits for a free core, then runs `work` on the blocking pool.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hashing pool closed")?;
        off_the_runtime(move || {
            let _permit = permit;
            work()
        })
        .await
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
        self.bounded(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))
        })
        .await?
    }

    async fn verify(&self, password: Password, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let dummy = self.clone();
        self.bounded(move || {
            let phc = hash.map_or_else(|| dummy.dummy_hash(), |hash| hash.as_ref().to_owned());
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hasher = Argon2PasswordHasher::new();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..cores * 4).map(|_| {
            let (hasher, running, peak) = (hasher.clone(), running.clone(), peak.clone());
            tokio::spawn(async move {
                hasher
                    .bounded(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            })
        });
        for job in jobs.collect::<Vec<_>>() {
            job.await.unwrap().unwrap();
        }
        assert!(
            peak.load(Ordering::SeqCst) <= cores,
            "peak {} > {cores}",
            peak.load(Ordering::SeqCst)
        );
    }
}
