use std::cell::RefCell;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as Phc, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use shop_domain::identity::{Password, PasswordHash, PasswordHasher};
use strata_domain::RepositoryError;

type Job = Box<dyn FnOnce() + Send>;

/// argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane, the
/// OWASP baseline), run on a few threads of its own — one per core unless
/// told otherwise — so hashing never stalls the threads serving requests, and
/// a burst of sign-ups queues for those threads instead of taking every core
/// and the machine's memory from the requests that need neither.
/// Each thread keeps the memory argon2 works in from one hash to the next, so
/// the process holds at most one hash's memory per thread, however many
/// sign-ins it serves. The threads end when the last clone of the hasher is
/// dropped.
#[derive(Debug, Clone)]
pub struct Argon2PasswordHasher {
    jobs: Sender<Job>,
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }
}

impl Argon2PasswordHasher {
    /// A hasher running hashes on `threads` threads (at least one).
    ///
    /// # Panics
    /// When the operating system refuses a thread at start-up.
    #[must_use]
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&queue))
                .expect("the operating system starts a password hashing thread");
        }
        Self { jobs }
    }

    /// Runs `work` on one of the hashing threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RepositoryError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| RepositoryError::storage(HashingFailed("no hashing thread".into())))?;
        answered.await.map_err(RepositoryError::storage)
    }
}

/// A hashing thread: takes jobs until every sender is gone. A job that panics
/// fails alone (its caller's answer is dropped), the thread goes on.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
struct HashingFailed(String);

thread_local! {
    /// This thread's argon2 memory, kept from one hash to the next: freed and
    /// allocated again for each hash, 19 MiB at a time, it is not given back
    /// to the system but piles up in the allocator's arenas.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Where a hash works: in the thread's kept memory, or in memory of its own,
/// given back when the hash is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memory {
    Kept,
    Own,
}

/// argon2 of `password` and `salt` into `out`, in this thread's kept memory.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    MEMORY.with_borrow_mut(|memory| {
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// A new argon2id hash of `password` with the default parameters and a
/// random salt, as a PHC string.
fn hash_phc(password: &[u8]) -> Result<String, HashingFailed> {
    hash_phc_in(password, Memory::Kept)
}

/// [`hash_phc`], working in `memory`.
fn hash_phc_in(password: &[u8], memory: Memory) -> Result<String, HashingFailed> {
    let failed = |error: &dyn std::fmt::Display| HashingFailed(error.to_string());
    let params = Params::default();
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let salt = try_generate_salt().map_err(|error| failed(&error))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    match memory {
        Memory::Kept => compute(&argon2, &params, password, &salt, &mut out),
        Memory::Own => argon2.hash_password_into(password, &salt, &mut out),
    }
    .map_err(|error| failed(&error))?;
    let phc = Phc {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(|error| failed(&error))?,
        salt: Some(Salt::new(&salt).map_err(|error| failed(&error))?),
        hash: Some(Output::new(&out).map_err(|error| failed(&error))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to the PHC string `phc` (any argon2 variant,
/// version and parameters it names); a malformed one matches nothing.
fn verify_phc(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = Phc::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(&argon2, &params, password, salt.as_ref(), &mut out).is_ok()
        // `Output`'s comparison takes the same time wherever they differ.
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, RepositoryError> {
        let password = password.clone();
        self.run(move || hash_phc(password.expose().as_bytes()).map(PasswordHash::from_phc))
            .await?
            .map_err(RepositoryError::storage)
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        let password = password.clone();
        let hash = hash.as_phc().to_owned();
        self.run(move || verify_phc(password.expose().as_bytes(), &hash))
            .await
            .unwrap_or(false)
    }

    /// Worked in memory of its own, given back after: made at start, the
    /// decoy would otherwise leave a hashing thread holding its memory while
    /// the service sits idle.
    async fn decoy(&self) -> Result<PasswordHash, RepositoryError> {
        self.run(|| {
            let password = try_generate_salt().map_err(|error| HashingFailed(error.to_string()))?;
            hash_phc_in(&password, Memory::Own).map(PasswordHash::from_phc)
        })
        .await?
        .map_err(RepositoryError::storage)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Each job as long as a short hash; sixteen of them at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_run_on_the_hashers_own_threads_only() {
        let hasher = Argon2PasswordHasher::new(2);
        let mut runs = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let hasher = hasher.clone();
            runs.spawn(async move {
                hasher
                    .run(|| {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        std::thread::current().id()
                    })
                    .await
            });
        }
        let threads: HashSet<_> = runs
            .join_all()
            .await
            .into_iter()
            .map(|thread| thread.expect("ran"))
            .collect();
        assert!(threads.len() <= 2, "{} threads", threads.len());
        assert!(!threads.contains(&std::thread::current().id()));
    }

    /// Hashes stored before are read as before, and the crate's own
    /// verifier reads the hashes made here.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

        let hasher = Argon2PasswordHasher::new(1);
        let password = Password::new("correct horse battery").expect("long enough");
        let theirs = Argon2::default()
            .hash_password(password.expose().as_bytes())
            .expect("hashed")
            .to_string();
        assert!(
            hasher
                .verify(&password, &PasswordHash::from_phc(theirs.clone()))
                .await
        );
        assert!(
            !hasher
                .verify(
                    &Password::offered("correct horse battery!"),
                    &PasswordHash::from_phc(theirs)
                )
                .await
        );
        let ours = hasher.hash(&password).await.expect("hashed");
        let parsed = Phc::new(ours.as_phc()).expect("a PHC string");
        assert!(
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        );
    }

    /// The decoy costs what a real hash costs to check: the same algorithm
    /// and parameters, a salt of its own, and no password anyone offers.
    #[tokio::test]
    async fn the_decoy_is_a_hash_like_any_other_of_a_password_no_one_knows() {
        let hasher = Argon2PasswordHasher::new(1);
        let real = hasher
            .hash(&Password::offered("correct horse battery"))
            .await
            .expect("hashed");
        let (first, second) = (
            hasher.decoy().await.expect("made"),
            hasher.decoy().await.expect("made"),
        );
        let (real, decoy) = (
            Phc::new(real.as_phc()).expect("a PHC string"),
            Phc::new(first.as_phc()).expect("a PHC string"),
        );
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params);
        assert_ne!(
            first.as_phc(),
            second.as_phc(),
            "each decoy has a salt of its own"
        );
        for offered in ["", "correct horse battery", "password"] {
            assert!(!hasher.verify(&Password::offered(offered), &first).await);
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Argon2PasswordHasher::default();
        let password = Password::new("correct horse battery").expect("long enough");
        let hash = hasher.hash(&password).await.expect("hashed");
        assert!(hash.as_phc().starts_with("$argon2id$"));
        assert!(hasher.verify(&password, &hash).await);
        assert!(
            !hasher
                .verify(&Password::offered("correct horse battery!"), &hash)
                .await
        );
        assert!(
            !hasher
                .verify(&password, &PasswordHash::from_phc("not a hash"))
                .await
        );
    }
}
