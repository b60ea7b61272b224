//! Password hashing with argon2id, off the async runtime.
use anyhow::Context;
use application::{Overloaded, PasswordHasher};
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
    /// Hashes running at once (default: one per core). More would not finish sooner, and
    /// each holds 19 MiB: unbounded, a burst of a few hundred sign-ups would take gigabytes.
    permits: Arc<Semaphore>,
    /// Hashes running or waiting. When it is full a request is refused at once
    /// ([`Overloaded`]) instead of waiting ever longer behind the others.
    admitted: Arc<Semaphore>,
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new(cores(), DEFAULT_WAITING)
    }
}

/// Hashes that may wait for a core: with one per core running, a waiting request is served
/// within about `waiting / cores` hash times (~200 ms on 2 cores).
pub const DEFAULT_WAITING: usize = 16;

/// The cores this process may use.
#[must_use]
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl Argon2PasswordHasher {
    /// At most `concurrency` hashes at once (at least 1) and `waiting` more in line.
    #[must_use]
    pub fn new(concurrency: usize, waiting: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            dummy: Arc::new(OnceLock::new()),
            permits: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(waiting))),
        }
    }

    /// Waits for a free core, then runs `work` on the blocking pool; refuses at once when
    /// the line is full.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let Ok(admission) = self.admitted.clone().try_acquire_owned() else {
            return Err(Overloaded.into());
        };
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hashing pool closed")?;
        off_the_runtime(move || {
            let _held = (admission, permit);
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
        let hasher = Argon2PasswordHasher::default();
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
        let hasher = Argon2PasswordHasher::default();
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
        Argon2PasswordHasher::default()
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
        let hasher = Argon2PasswordHasher::default();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_line_is_refused_at_once_instead_of_waiting() {
        let hasher = Argon2PasswordHasher::new(1, 1);
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        // One running (blocked until released), one waiting: the line is full.
        let running = {
            let (hasher, released) = (hasher.clone(), released.clone());
            tokio::spawn(async move {
                hasher
                    .bounded(move || {
                        let _ = released.lock().unwrap().recv();
                    })
                    .await
            })
        };
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.bounded(|| ()).await })
        };
        // Until both are admitted, a third may still get in: wait for the line to fill.
        while hasher.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.bounded(|| ()).await.unwrap_err();
        assert!(application::is_overloaded(&refused), "{refused:#}");

        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        assert!(
            hasher.bounded(|| ()).await.is_ok(),
            "admitted again once free"
        );
    }
}
