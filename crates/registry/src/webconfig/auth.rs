//! HTTP basic auth against bcrypt hashes, with the result of each verification cached so
//! that bcrypt (tens of milliseconds by design) runs once per credential, not per scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use http::HeaderValue;
use tokio::sync::Semaphore;

/// Most credentials remembered at once; as in exporter-toolkit.
const CACHE_CAPACITY: usize = 100;

/// Whether a request may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Credentials matched a user.
    Allowed,
    /// Missing, malformed or wrong credentials.
    Denied,
}

/// The `basic_auth_users` of a web config.
#[derive(Debug)]
pub struct BasicAuth {
    users: HashMap<String, String>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// bcrypt is run one at a time, so a flood of wrong passwords costs one core, not all.
    bcrypt_gate: Arc<Semaphore>,
    bcrypt_runs: AtomicU64,
}

impl BasicAuth {
    /// Checks every hash is a well-formed bcrypt hash. On error, returns the user at fault.
    pub fn new(users: &BTreeMap<String, String>) -> Result<Self, (String, String)> {
        for (user, hash) in users {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| (user.clone(), format!("invalid bcrypt hash: {e}")))?;
        }
        Ok(Self {
            users: users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            cache: Mutex::new(HashMap::new()),
            bcrypt_gate: Arc::new(Semaphore::new(1)),
            bcrypt_runs: AtomicU64::new(0),
        })
    }

    /// How many times bcrypt has run; repeated good credentials must not raise it.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }

    /// Checks an `Authorization` header.
    pub async fn check(&self, header: Option<&HeaderValue>) -> AuthOutcome {
        let Some((user, password)) = header.and_then(decode_basic) else {
            return AuthOutcome::Denied;
        };
        let known = self.users.get(&user);
        // An unknown user is checked against a fixed hash, so timing does not tell which
        // user names exist.
        let hash = known.map_or_else(|| unknown_user_hash().to_owned(), String::clone);
        let key = cache_key(&user, &hash, &password);
        if let Some(&ok) = self.lock_cache().get(&key) {
            return outcome(ok && known.is_some());
        }

        let Ok(_permit) = self.bcrypt_gate.acquire().await else {
            return AuthOutcome::Denied;
        };
        // Another request may have verified the same credentials while this one waited.
        if let Some(&ok) = self.lock_cache().get(&key) {
            return outcome(ok && known.is_some());
        }
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_CAPACITY
            && let Some(evict) = cache.keys().next().copied()
        {
            cache.remove(&evict);
        }
        cache.insert(key, ok);
        outcome(ok && known.is_some())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn outcome(ok: bool) -> AuthOutcome {
    if ok {
        AuthOutcome::Allowed
    } else {
        AuthOutcome::Denied
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

fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        bcrypt::hash("kiln: no such user", bcrypt::DEFAULT_COST)
            .unwrap_or_else(|_| unreachable!("hashing a constant with the default cost succeeds"))
    })
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
}
