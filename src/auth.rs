//! Authentication (spec section 3): HTTP Basic with e-mail and API key (or password, for the one
//! call that allows it), argon2id hashes, and a bounded cache of successful verifications.
//!
//! Why a cache: one argon2id verification costs tens of milliseconds of CPU, which would cap the
//! server at a few dozen requests a second. The cache is keyed by a keyed BLAKE2b hash of the
//! credentials (never the plain key) and remembers which stored hash it verified against. Each
//! request compares that with the user's current stored hash (one indexed read), so a rotated key
//! or a deleted user fails on the very next request, even when another process changed the file.
//!
//! Why a gate: argon2 work is bounded (`argon2_max_concurrent` at once, `argon2_max_waiting` in
//! line, 429 beyond), so a flood of wrong keys cannot take every worker thread from clients whose
//! credentials are cached.

use crate::access::Principal;
use crate::db::{users, Store};
use crate::error::{Error, Kind, Result};
use crate::gate::Gate;
use crate::util;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use blake2::digest::{KeyInit, Mac};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hashes a secret (API key or password) as an argon2id PHC string.
pub fn hash_secret(secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2 hashing failed: {e}")))
}

fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The one 401 answer, identical for every kind of bad credentials.
pub fn unauthorized() -> Error {
    Error::new(
        Kind::Unauthorized,
        "Authentication failed. Send HTTP Basic credentials: your e-mail as the user name and \
         your API key as the password",
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    ApiKey = 0,
    Password = 1,
}

/// Credentials verified earlier (argon2) and remembered: who they belong to and the stored hash
/// they were verified against. Not yet proof: the request must confirm that the user's stored
/// hash is still this one (see `Auth::identify`).
pub struct Claim {
    pub user_pk: i64,
    /// The user's public id (ids never change), for what the request records as its author.
    pub user_id: String,
    /// The secret was the password, not the API key.
    pub password: bool,
    pub verified_hash: String,
    key: [u8; 32],
}

/// The outcome of reading credentials (see `Auth::identify`).
pub enum Identity {
    Verified(Principal),
    Remembered(Claim),
}

struct Entry {
    user_pk: i64,
    user_id: String,
    /// The stored hash this entry was verified against.
    verified_hash: String,
    at: Instant,
}

pub struct AuthConfig {
    pub cache_entries: usize,
    pub cache_ttl: Duration,
    pub argon2_max_concurrent: usize,
    pub argon2_max_waiting: usize,
}

type CacheMac = blake2::Blake2bMac<blake2::digest::consts::U32>;

pub struct Auth {
    /// The keyed MAC that names cache entries, after absorbing the secret kind's byte; indexed
    /// by `Secret as usize`.
    mac_states: [CacheMac; 2],
    cache: Mutex<HashMap<[u8; 32], Entry>>,
    max_entries: usize,
    ttl: Duration,
    gate: Gate,
    /// Verified against when the e-mail is unknown, so that case costs what a wrong key costs.
    dummy_hash: String,
}

impl Auth {
    pub fn new(c: AuthConfig) -> Result<Auth> {
        let mut mac_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut mac_key);
        let state = |kind: Secret| -> Result<CacheMac> {
            let mut mac = <CacheMac as KeyInit>::new_from_slice(&mac_key)
                .map_err(|_| Error::internal("a 32-byte key is valid for BLAKE2b"))?;
            mac.update(&[kind as u8]);
            Ok(mac)
        };
        Ok(Auth {
            mac_states: [state(Secret::ApiKey)?, state(Secret::Password)?],
            cache: Mutex::new(HashMap::new()),
            max_entries: c.cache_entries,
            ttl: c.cache_ttl,
            gate: Gate::new(c.argon2_max_concurrent, c.argon2_max_waiting),
            dummy_hash: hash_secret(&util::new_api_key())?,
        })
    }

    /// The name of a remembered verification: a keyed MAC of the secret's kind and the
    /// `Authorization` header's value exactly as sent, so that a remembered request decodes
    /// nothing. The same credentials written differently (letter case of the e-mail, base64
    /// padding) are simply remembered once each. The MAC state after the key block and the kind
    /// byte is computed once (`new`) and copied here: one BLAKE2b compression per request.
    fn cache_key(&self, secret: Secret, header: &str) -> [u8; 32] {
        let mut mac = self.mac_states[secret as usize].clone();
        mac.update(header.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Who the credentials claim to be (with `allow_password`, the secret may also be the user's
    /// password), reading the database only when they are not remembered:
    /// `Verified` after a fresh argon2 verification, `Remembered` (still to be confirmed against
    /// the stored hash) when they were verified before. A `Remembered` identity must be confirmed
    /// before anything is answered: by `confirm`, or by the request's own statement or write
    /// transaction, which calls `refuted` when it does not hold. Folding the confirmation into the
    /// request's own read saves the hot paths a read transaction of their own.
    pub fn identify(
        &self,
        store: &Store,
        header: Option<&str>,
        allow_password: bool,
    ) -> Result<Identity> {
        let raw = header.unwrap_or("");
        if raw.len() > MAX_AUTHORIZATION_BYTES {
            return Err(unauthorized());
        }
        let kinds = kinds(allow_password);
        for &kind in kinds {
            let key = self.cache_key(kind, raw);
            if let Some((user_pk, user_id, verified_hash)) = self.lookup(&key) {
                return Ok(Identity::Remembered(Claim {
                    user_pk,
                    user_id,
                    password: kind == Secret::Password,
                    verified_hash,
                    key,
                }));
            }
        }
        self.verify(store, raw, kinds).map(Identity::Verified)
    }

    /// The caller, confirmed: a `Remembered` identity is checked against the stored hash with
    /// one indexed read; if the hash changed since (a rotated key, a deleted user), the
    /// credentials are verified again from scratch.
    pub fn confirm(
        &self,
        store: &Store,
        header: Option<&str>,
        allow_password: bool,
        identity: Identity,
    ) -> Result<Principal> {
        let claim = match identity {
            Identity::Verified(p) => return Ok(p),
            Identity::Remembered(claim) => claim,
        };
        let (pk, password) = (claim.user_pk, claim.password);
        let found = store.read_one(|c| users::if_hash_is(c, pk, password, &claim.verified_hash))?;
        match found {
            Some((id, email, tenant_admin)) => Ok(Principal {
                pk,
                id,
                email,
                tenant_admin,
            }),
            None => {
                self.forget(&claim);
                self.verify(store, header.unwrap_or(""), kinds(allow_password))
            }
        }
    }

    /// A `Remembered` identity was refuted by the request's own read: the stored hash is no
    /// longer the verified one. Forgets it and gives the 401. (Verifying again from scratch, as
    /// `confirm` does, cannot succeed on these paths: they accept only API keys, and a key is
    /// replaced only by a new random one, so the old secret cannot match the new hash.)
    pub fn refuted(&self, claim: &Claim) -> Error {
        self.forget(claim);
        unauthorized()
    }

    fn forget(&self, claim: &Claim) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(&claim.key);
        }
    }

    /// The slow path: argon2, bounded by the gate.
    fn verify(&self, store: &Store, header: &str, kinds: &[Secret]) -> Result<Principal> {
        let (email, secret) = parse_basic(Some(header)).ok_or_else(unauthorized)?;
        let (email, secret) = (email.as_str(), secret.as_str());
        let user = store.read_one(|c| users::by_email(c, email))?;
        // Every kind of secret costs one verification, against the user's hash or, where there
        // is none (unknown e-mail, user without a password), the dummy: a refusal takes the same
        // time whatever the reason.
        let verified = {
            let _permit = self.gate_permit()?;
            let mut found = None;
            for &kind in kinds {
                let hash = user.as_ref().and_then(|u| current_hash(u, kind));
                let ok = verify_secret(secret, hash.unwrap_or(&self.dummy_hash));
                if let (true, Some(hash), None) = (ok, hash, &found) {
                    found = Some((kind, hash.to_string()));
                }
                if found.is_some() {
                    break;
                }
            }
            found
        };
        let (Some(user), Some((kind, hash))) = (user, verified) else {
            return Err(unauthorized());
        };
        self.remember(self.cache_key(kind, header), user.pk, user.id.clone(), hash);
        let pk = user.pk;
        if let Err(e) = store.write(move |c| users::touch_login(c, pk, util::now_ms())) {
            log::warn!("could not record last_login: {e}");
        }
        Ok(principal(&user))
    }

    /// A place at the argon2 gate, or 429.
    fn gate_permit(&self) -> Result<crate::gate::Permit<'_>> {
        self.gate.enter().ok_or_else(|| {
            Error::new(
                Kind::TooManyRequests,
                "Too many credential checks are in progress; retry in a moment (a remembered, \
                 valid API key is not affected)",
            )
        })
    }

    /// Hashes a new secret (API key or password) for a request, within the argon2 gate, so that
    /// issuing keys in a loop cannot take more CPU than the gate allows.
    pub fn hash(&self, secret: &str) -> Result<String> {
        let _permit = self.gate_permit()?;
        hash_secret(secret)
    }

    /// A remembered verification used within the TTL: (user, verified hash). Each use starts its
    /// TTL again, so busy credentials never expire into a crowd of argon2 checks; an idle entry
    /// expires. Verifying the secret again on the way would prove nothing new: the entry is named
    /// by a MAC of these exact credentials, and every request compares the verified hash with the
    /// stored one.
    fn lookup(&self, key: &[u8; 32]) -> Option<(i64, String, String)> {
        let mut cache = self.cache.lock().ok()?;
        let e = cache.get_mut(key)?;
        if e.at.elapsed() >= self.ttl {
            return None;
        }
        e.at = Instant::now();
        Some((e.user_pk, e.user_id.clone(), e.verified_hash.clone()))
    }

    fn remember(&self, key: [u8; 32], user_pk: i64, user_id: String, verified_hash: String) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= self.max_entries {
            let ttl = self.ttl;
            cache.retain(|_, e| e.at.elapsed() < ttl);
        }
        while cache.len() >= self.max_entries {
            let Some(k) = cache.keys().next().copied() else {
                break;
            };
            cache.remove(&k);
        }
        cache.insert(
            key,
            Entry {
                user_pk,
                user_id,
                verified_hash,
                at: Instant::now(),
            },
        );
    }

    /// Forgets every remembered verification of one user (after a key rotation in this process;
    /// other processes' rotations are caught by the hash comparison).
    pub fn forget_user(&self, user_pk: i64) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, e| e.user_pk != user_pk);
        }
    }
}

/// The kinds of secret a request may use: the API key, and with `allow_password` (only
/// `POST /v2/users/{id}/api-key`) the password.
fn kinds(allow_password: bool) -> &'static [Secret] {
    if allow_password {
        &[Secret::ApiKey, Secret::Password]
    } else {
        &[Secret::ApiKey]
    }
}

fn current_hash(u: &users::User, kind: Secret) -> Option<&str> {
    match kind {
        Secret::ApiKey => Some(u.api_key_hash.as_str()),
        Secret::Password => u.password_hash.as_deref(),
    }
}

fn principal(u: &users::User) -> Principal {
    Principal {
        pk: u.pk,
        id: u.id.clone(),
        email: u.email.clone(),
        tenant_admin: u.tenant_admin,
    }
}

/// The longest `Authorization` value looked at: `Basic ` and the base64 of a 254-byte e-mail, a
/// colon and a 1,024-byte secret (1,708 bytes), with room for spaces.
const MAX_AUTHORIZATION_BYTES: usize = 2048;

/// `Basic base64(email:secret)` → (email, secret). Anything else is `None`.
fn parse_basic(header: Option<&str>) -> Option<(String, String)> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (email, secret) = text.split_once(':')?;
    if email.is_empty() || secret.is_empty() || email.len() > 254 || secret.len() > 1024 {
        return None;
    }
    Some((email.to_string(), secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            parse_basic(Some(&enc("a@b:k:x"))),
            Some(("a@b".into(), "k:x".into()))
        );
        assert_eq!(parse_basic(Some(&enc("a@b:"))), None);
        assert_eq!(parse_basic(Some("Bearer x")), None);
        assert_eq!(parse_basic(Some("Basic !!!")), None);
        assert_eq!(parse_basic(None), None);
    }

    #[test]
    fn hashes_verify() {
        let h = hash_secret("s3cret!").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("s3cret!", &h));
        assert!(!verify_secret("s3cret?", &h));
    }
}
