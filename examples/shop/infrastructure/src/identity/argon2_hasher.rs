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
/// Each hash works in memory of its own, given back to the system when it is
/// done (see [`compute`]): an idle service holds none of it, however many
/// sign-ins it served. The threads end when the last clone of the hasher is
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

/// The least memory, in blocks, a hash asks the allocator for: more than
/// 32 MiB, the largest threshold above which glibc's allocator serves a
/// request from a mapping of its own — one unmapped when it is freed — unless
/// an arena happens to hold that much free already. Asked for less (19 MiB
/// with the default parameters), glibc raises that threshold after the first
/// hash and serves the later ones from its arenas, which keep what is freed:
/// each hashing thread would hold a hash's memory for good, and more piles up
/// where hashes overlap. Only the blocks a hash writes become resident; the
/// rest of the reservation is address space, never touched. The price is a
/// fresh mapping per hash, whose pages the kernel zeroes as argon2 first
/// writes them.
const OWN_MAPPING_BLOCKS: usize = (32 << 20) / Block::SIZE + 1;

/// argon2 of `password` and `salt` into `out`, in memory allocated for it
/// and given back to the system when it is done.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(OWN_MAPPING_BLOCKS));
    memory.resize(blocks, Block::default());
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory)
}

/// A new argon2id hash of `password` with the default parameters and a
/// random salt, as a PHC string.
fn hash_phc(password: &[u8]) -> Result<String, HashingFailed> {
    let failed = |error: &dyn std::fmt::Display| HashingFailed(error.to_string());
    let params = Params::default();
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let salt = try_generate_salt().map_err(|error| failed(&error))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(&argon2, &params, password, &salt, &mut out).map_err(|error| failed(&error))?;
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

    /// A hash of a random password, which no one can offer.
    async fn decoy(&self) -> Result<PasswordHash, RepositoryError> {
        self.run(|| {
            let password = try_generate_salt().map_err(|error| HashingFailed(error.to_string()))?;
            hash_phc(&password).map(PasswordHash::from_phc)
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

    /// What hashing leaves behind, measured in a process of its own (this
    /// test binary again, running only the test below), so no other test's
    /// allocations blur it: hashing and checking passwords over and over
    /// leaves the process no larger than one hash's memory would make it.
    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_gives_its_memory_back_to_the_system() {
        let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "identity::argon2_hasher::tests::resident_memory_around_hashes",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .expect("the test binary runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{printed}");
        let grown: u64 = printed
            .lines()
            .find_map(|line| line.split_once("grown_kib="))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no measurement in {printed}"));
        // One hash works in 19 MiB; a thread that kept it, or an arena that
        // piled it up, would leave at least that much.
        assert!(grown < 8 * 1024, "{grown} KiB more after the hashes");
    }

    /// Run by [`hashing_gives_its_memory_back_to_the_system`] in a process
    /// of its own: prints how much anonymous memory the process gained over
    /// hashes, checks and decoys on two threads.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    #[ignore = "run in a process of its own by hashing_gives_its_memory_back_to_the_system"]
    async fn resident_memory_around_hashes() {
        fn anonymous_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .expect("/proc/self/status")
                .lines()
                .find_map(|line| line.strip_prefix("RssAnon:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("RssAnon")
        }
        let hasher = Argon2PasswordHasher::new(2);
        let password = Password::new("correct horse battery").expect("long enough");
        let hash = hasher.hash(&password).await.expect("hashed");
        let before = anonymous_kib();
        for _ in 0..3 {
            let (first, second, third) = tokio::join!(
                hasher.hash(&password),
                hasher.verify(&password, &hash),
                hasher.decoy(),
            );
            first.expect("hashed");
            assert!(second);
            third.expect("made");
        }
        let after = anonymous_kib();
        println!("grown_kib={}", after.saturating_sub(before));
        println!("before_kib={before} after_kib={after}");
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
