//! HTTP basic auth against bcrypt hashes.
//!
//! bcrypt is slow by design (tens of milliseconds), which makes every check a lever for a
//! client that guesses passwords. So:
//! - credentials that verified are remembered (as a digest), so a scraper costs one bcrypt,
//!   not one per scrape; wrong guesses are never remembered, so they cannot push the good
//!   ones out;
//! - bcrypt runs on a small pool, and a request waits for it a bounded time with a bounded
//!   queue: beyond that it is answered "busy" at once instead of piling up;
//! - an unknown user is checked against a configured user's hash, with that hash's cost, so
//!   it takes as long as a wrong password and timing does not reveal which users exist.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::HeaderValue;
use tokio::sync::Semaphore;

/// Most verified credentials remembered at once; as in exporter-toolkit.
const CACHE_CAPACITY: usize = 100;
/// Longest a request waits for a bcrypt slot before it is answered "busy".
const BCRYPT_WAIT: Duration = Duration::from_secs(1);
/// Most requests waiting for a bcrypt slot; more are answered "busy" without waiting.
const BCRYPT_QUEUE: usize = 16;

/// Whether a request may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Credentials matched a user.
    Allowed,
    /// Missing, malformed or wrong credentials.
    Denied,
    /// The credentials are not remembered and too many others are being checked: try again.
    Busy,
}

/// The `basic_auth_users` of a web config.
#[derive(Debug)]
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// The hash an unknown user is checked against: the costliest configured one.
    stand_in: String,
    /// Digests of credentials that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    bcrypt_runs: AtomicU64,
}

impl BasicAuth {
    /// Checks every hash is a well-formed bcrypt hash. On error, returns the user at fault.
    pub fn new(users: &BTreeMap<String, String>) -> Result<Self, (String, String)> {
        let mut stand_in: Option<(u32, &String)> = None;
        for (user, hash) in users {
            let parts = hash
                .parse::<bcrypt::HashParts>()
                .map_err(|e| (user.clone(), format!("invalid bcrypt hash: {e}")))?;
            if stand_in.is_none_or(|(cost, _)| parts.get_cost() > cost) {
                stand_in = Some((parts.get_cost(), hash));
            }
        }
        // Half the cores, so guessing leaves the others to serving.
        let slots = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .clamp(1, 4);
        Ok(Self {
            users: users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            stand_in: stand_in.map(|(_, h)| h.clone()).unwrap_or_default(),
            verified: Mutex::new(HashSet::new()),
            bcrypt_slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            bcrypt_runs: AtomicU64::new(0),
        })
    }

    /// How many times bcrypt has run; repeated good credentials must not raise it.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }

    /// The bcrypt cost an unknown user's check runs at: that of the costliest configured
    /// hash, so it takes as long as a wrong password.
    pub fn unknown_user_cost(&self) -> Option<u32> {
        self.stand_in
            .parse::<bcrypt::HashParts>()
            .ok()
            .map(|p| p.get_cost())
    }

    /// Checks an `Authorization` header.
    pub async fn check(&self, header: Option<&HeaderValue>) -> AuthOutcome {
        let Some((user, password)) = header.and_then(decode_basic) else {
            return AuthOutcome::Denied;
        };
        let known = self.users.get(&user);
        let hash = known.unwrap_or(&self.stand_in).clone();
        let key = cache_key(&user, &hash, &password);
        if known.is_some() && self.lock_verified().contains(&key) {
            return AuthOutcome::Allowed;
        }

        let Some(_slot) = self.bcrypt_slot().await else {
            return AuthOutcome::Busy;
        };
        // Another request may have verified the same credentials while this one waited.
        if known.is_some() && self.lock_verified().contains(&key) {
            return AuthOutcome::Allowed;
        }
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        // An unknown user is denied even if the password matches the stand-in's.
        if !(ok && known.is_some()) {
            return AuthOutcome::Denied;
        }
        let mut verified = self.lock_verified();
        if verified.len() >= CACHE_CAPACITY
            && let Some(evict) = verified.iter().next().copied()
        {
            verified.remove(&evict);
        }
        verified.insert(key);
        AuthOutcome::Allowed
    }

    /// A bcrypt slot, waited for at most [`BCRYPT_WAIT`] behind at most [`BCRYPT_QUEUE`]
    /// others.
    async fn bcrypt_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(slot) = self.bcrypt_slots.try_acquire() {
            return Some(slot);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= BCRYPT_QUEUE {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let slot = tokio::time::timeout(BCRYPT_WAIT, self.bcrypt_slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        slot.ok()?.ok()
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The cache keeps digests, never passwords. A changed hash (new password in the config)
/// changes the key, so a reload never honours stale results.
fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn decode_basic(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("secret", 4).unwrap();
        BasicAuth::new(&BTreeMap::from([("alice".to_owned(), hash)])).unwrap()
    }

    #[tokio::test]
    async fn good_credentials_are_verified_once_then_cached() {
        let auth = auth();
        for _ in 0..20 {
            assert_eq!(
                auth.check(Some(&header("alice", "secret"))).await,
                AuthOutcome::Allowed
            );
        }
        assert_eq!(auth.bcrypt_runs(), 1);
    }

    #[tokio::test]
    async fn wrong_password_unknown_user_and_garbage_are_denied() {
        let auth = auth();
        assert_eq!(
            auth.check(Some(&header("alice", "wrong"))).await,
            AuthOutcome::Denied
        );
        assert_eq!(
            auth.check(Some(&header("mallory", "secret"))).await,
            AuthOutcome::Denied
        );
        assert_eq!(auth.check(None).await, AuthOutcome::Denied);
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(auth.check(Some(&bearer)).await, AuthOutcome::Denied);
        let bad = HeaderValue::from_static("Basic !!!");
        assert_eq!(auth.check(Some(&bad)).await, AuthOutcome::Denied);
    }

    #[test]
    fn malformed_hash_names_the_user() {
        let err = BasicAuth::new(&BTreeMap::from([(
            "bob".to_owned(),
            "plaintext".to_owned(),
        )]))
        .unwrap_err();
        assert_eq!(err.0, "bob");
    }

    #[test]
    fn an_unknown_user_is_checked_at_the_cost_of_the_real_hashes() {
        // The costs exporter-toolkit's documentation and htpasswd use.
        let users = BTreeMap::from([
            ("alice".to_owned(), bcrypt::hash("a", 10).unwrap()),
            ("bob".to_owned(), bcrypt::hash("b", 5).unwrap()),
        ]);
        let auth = BasicAuth::new(&users).unwrap();
        assert_eq!(auth.unknown_user_cost(), Some(10));
    }

    #[tokio::test]
    async fn an_unknown_user_with_the_stand_in_password_is_denied() {
        let auth = auth();
        assert_eq!(
            auth.check(Some(&header("mallory", "secret"))).await,
            AuthOutcome::Denied
        );
        assert_eq!(
            auth.check(Some(&header("mallory", "secret"))).await,
            AuthOutcome::Denied
        );
    }

    #[tokio::test]
    async fn wrong_guesses_never_evict_verified_credentials() {
        let auth = auth();
        assert_eq!(
            auth.check(Some(&header("alice", "secret"))).await,
            AuthOutcome::Allowed
        );
        // Three times the cache's size in distinct wrong guesses, for a real and an
        // unknown user.
        for guess in 0..3 * CACHE_CAPACITY {
            let user = if guess % 2 == 0 { "alice" } else { "mallory" };
            assert_eq!(
                auth.check(Some(&header(user, &format!("guess{guess}"))))
                    .await,
                AuthOutcome::Denied
            );
        }
        let runs = auth.bcrypt_runs();
        assert_eq!(
            auth.check(Some(&header("alice", "secret"))).await,
            AuthOutcome::Allowed
        );
        assert_eq!(
            auth.bcrypt_runs(),
            runs,
            "the good credentials were forgotten"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_guesses_is_answered_busy_instead_of_queued() {
        const GUESSES: usize = 40;
        let hash = bcrypt::hash("secret", 8).unwrap();
        let auth = Arc::new(BasicAuth::new(&BTreeMap::from([("alice".to_owned(), hash)])).unwrap());
        let mut checks = Vec::new();
        for guess in 0..GUESSES {
            let auth = Arc::clone(&auth);
            checks.push(tokio::spawn(async move {
                let started = std::time::Instant::now();
                let outcome = auth
                    .check(Some(&header("alice", &format!("g{guess}"))))
                    .await;
                (outcome, started.elapsed())
            }));
        }
        let mut busy = 0;
        for check in checks {
            let (outcome, took) = check.await.unwrap();
            assert_ne!(outcome, AuthOutcome::Allowed);
            busy += usize::from(outcome == AuthOutcome::Busy);
            // The wait is bounded, plus the one bcrypt a request may then run.
            assert!(took < BCRYPT_WAIT + Duration::from_secs(2), "{took:?}");
        }
        assert!(
            busy >= GUESSES - BCRYPT_QUEUE - 4,
            "only {busy} answered busy"
        );
    }
}
