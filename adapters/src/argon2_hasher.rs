//! Password hashing with argon2id, off the async runtime.
use anyhow::Context;
use application::{Overloaded, PasswordHasher};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as Phc, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use domain::{Password, PasswordHash};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// Argon2's working memory, one buffer per running hash, kept and reused. Allocated
    /// afresh for every hash (as `argon2`'s own `hash_password` does), glibc's allocator kept
    /// the freed 19 MiB blocks: a burst of 24 clients left the process at 800 MiB.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
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
            memory: Arc::default(),
        }
    }

    /// Waits for a free core, then runs `work` on the blocking pool with a working-memory
    /// buffer of its own; refuses at once when the line is full.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.memory.clone();
        self.bounded(move || {
            // Never more buffers than permits: each running hash takes one and gives it back.
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let result = work(&mut memory);
            lock(&pool).push(memory);
            result
        })
        .await
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

    fn dummy_hash(&self, memory: &mut Vec<Block>) -> String {
        self.dummy
            .get_or_init(|| {
                hash_in(memory, b"registrar dummy password")
                    .expect("hashing a constant with default parameters succeeds")
            })
            .clone()
    }
}

fn lock(pool: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    // A buffer holds no invariant a panic could break: a poisoned pool is still usable.
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Argon2id with the default parameters and a fresh random salt, computed in `memory`; the
/// PHC string, as `argon2`'s `hash_password` writes it.
fn hash_in(memory: &mut Vec<Block>, password: &[u8]) -> anyhow::Result<String> {
    let salt = argon2::password_hash::try_generate_salt().context("no randomness for a salt")?;
    let (algorithm, version, params) = (Algorithm::Argon2id, Version::V0x13, Params::default());
    let output = compute(memory, algorithm, version, &params, password, &salt)?;
    let phc = Phc {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(phc_error)?,
        salt: Some(Salt::new(&salt).map_err(phc_error)?),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored`, with the algorithm, parameters and salt that
/// `stored` names, computed in `memory`.
fn verify_in(memory: &mut Vec<Block>, password: &[u8], stored: &str) -> anyhow::Result<bool> {
    let phc = Phc::new(stored)
        .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        anyhow::bail!("stored password hash has no salt or no output");
    };
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(phc_error)?;
    let version = phc
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .map_err(phc_error)?;
    let params = Params::try_from(&phc).map_err(phc_error)?;
    let computed = compute(memory, algorithm, version, &params, password, salt.as_ref())?;
    // `Output`'s equality is constant-time.
    Ok(&computed == expected)
}

fn compute(
    memory: &mut Vec<Block>,
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
) -> anyhow::Result<Output> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory.as_mut_slice())
        .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))?;
    Output::new(&out).map_err(phc_error)
}

fn phc_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("password hash format: {error}")
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
        self.with_memory(move |memory| {
            hash_in(memory, password.expose_secret().as_bytes()).map(PasswordHash::from_phc)
        })
        .await?
    }

    async fn verify(&self, password: Password, hash: Option<PasswordHash>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let dummy = self.clone();
        self.with_memory(move |memory| {
            let stored =
                hash.map_or_else(|| dummy.dummy_hash(memory), |hash| hash.as_ref().to_owned());
            let matches = verify_in(memory, password.expose_secret().as_bytes(), &stored)?;
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
    async fn hashes_are_interchangeable_with_the_argon2_crate_s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = Argon2PasswordHasher::default();
        let ours = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", ours.as_ref())
                .is_ok(),
            "the crate verifies our hash"
        );
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let theirs = PasswordHash::from_phc(theirs);
        assert!(
            hasher
                .verify(password("correct horse"), Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("wrong horse!"), Some(theirs))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_hash_with_other_parameters_still_verifies() {
        use argon2::password_hash::PasswordHasher as _;
        let stronger = Params::new(32 * 1024, 3, 1, None).unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, stronger)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let hasher = Argon2PasswordHasher::default();
        let stored = PasswordHash::from_phc(stored);
        assert!(
            hasher
                .verify(password("correct horse"), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_reused_not_allocated_per_hash() {
        let hasher = Argon2PasswordHasher::new(2, 16);
        let burst = (0..12).map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(password("correct horse")).await.unwrap() })
        });
        for hash in join_all(burst).await {
            assert!(hash.as_ref().starts_with("$argon2id$"));
        }
        let buffers = lock(&hasher.memory).len();
        assert!(
            (1..=2).contains(&buffers),
            "{buffers} buffers for 2 hashes at once"
        );
    }

    async fn join_all<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut results = Vec::new();
        for task in tasks.collect::<Vec<_>>() {
            results.push(task.await.unwrap());
        }
        results
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
