//! The users (and OAuth clients) of the built-in login: a name and a secret, the secret given
//! in plain text or as an argon2 PHC hash (`$argon2id$v=19$...`). Plain secrets are hashed with
//! argon2 when the configuration is read, so every check is one argon2 verification (whose
//! final comparison is constant-time): a known name with a plain password, one with a hash and
//! an unknown name (checked against a dummy hash) all cost about the same. Secrets never appear
//! in Debug output.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use std::collections::BTreeMap;
use std::fmt;

/// Names and argon2 PHC hashes.
#[derive(Clone, Default)]
pub struct Secrets {
    hashes: BTreeMap<String, String>,
    /// Checked when the name is unknown, so the answer takes as long as for a known one.
    dummy: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.hashes.keys()).finish()
    }
}

/// A user name (or client id): 1 to 64 of letters, digits and `._@+-`, not starting with `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
}

fn hash(secret: &str) -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    (ring::rand::SystemRandom::new().fill(&mut bytes)).map_err(|_| "no randomness for a salt")?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing a password: {e}"))
}

impl Secrets {
    /// From `name -> secret` pairs (`what` names them in errors: "[users]", "--user").
    pub fn new(pairs: BTreeMap<String, String>, what: &str) -> Result<Secrets, String> {
        let mut hashes = BTreeMap::new();
        for (name, secret) in pairs {
            if !valid_name(&name) {
                return Err(format!(
                    "{what}: {name:?} is not a valid name (1-64 letters, digits, ._@+-)"
                ));
            }
            let stored = if secret.starts_with("$argon2") {
                let parsed = PasswordHash::new(&secret)
                    .map_err(|e| format!("{what} {name}: not an argon2 PHC hash: {e}"))?;
                if parsed.hash.is_none() || parsed.salt.is_none() {
                    return Err(format!(
                        "{what} {name}: an argon2 PHC hash without salt or hash"
                    ));
                }
                secret
            } else if secret.is_empty() {
                return Err(format!("{what} {name}: empty password"));
            } else {
                hash(&secret)?
            };
            hashes.insert(name, stored);
        }
        let dummy = if hashes.is_empty() {
            String::new()
        } else {
            hash("dropship: no such user")?
        };
        Ok(Secrets { hashes, dummy })
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.hashes.contains_key(name)
    }

    /// Whether `secret` is `name`'s. Blocking (argon2 takes tens of milliseconds): call it off
    /// the async runtime. An unknown name costs the same as a wrong secret.
    pub fn verify(&self, name: &str, secret: &str) -> bool {
        let (stored, known) = match self.hashes.get(name) {
            Some(h) => (h.as_str(), true),
            None if self.dummy.is_empty() => return false,
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok();
        ok && known
    }
}

/// `NAME:PASSWORD` pairs (flags, DROPSHIP_USERS) as a map; the last one of a name wins.
pub fn parse_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for p in pairs.iter().filter(|p| !p.trim().is_empty()) {
        let (name, pw) = p
            .split_once(':')
            .ok_or_else(|| "--user: expected NAME:PASSWORD".to_string())?;
        map.insert(name.trim().to_string(), pw.to_string());
    }
    Ok(map)
}

/// A user's stable id (the JWT's `user_id`): a UUID-shaped digest of the name.
pub fn user_id(name: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("dropship-user:{name}")));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_secrets_verify_and_stay_out_of_debug() {
        let phc = hash("s3cret-hashed").unwrap();
        let pairs = BTreeMap::from([
            ("alice".to_string(), "pw-alice".to_string()),
            ("bob".to_string(), phc),
        ]);
        let s = Secrets::new(pairs, "[users]").unwrap();
        assert!(s.verify("alice", "pw-alice") && !s.verify("alice", "pw-alicE"));
        assert!(s.verify("bob", "s3cret-hashed") && !s.verify("bob", "x"));
        assert!(!s.verify("carol", "pw-alice"));
        let debug = format!("{s:?}");
        assert!(debug.contains("alice") && !debug.contains("pw-alice") && !debug.contains('$'));
    }

    #[test]
    fn names_and_pairs_are_checked() {
        assert!(valid_name("a.b@example.com") && !valid_name("-x") && !valid_name("a b"));
        assert!(parse_pairs(&["nopassword".into()]).is_err());
        let m = parse_pairs(&["u:p:with:colons".into()]).unwrap();
        assert_eq!(m["u"], "p:with:colons");
        let bad = BTreeMap::from([("x".to_string(), "$argon2id$junk".to_string())]);
        assert!(Secrets::new(bad, "[users]").is_err());
        assert_eq!(user_id("alice"), user_id("alice"));
        assert_ne!(user_id("alice"), user_id("bob"));
    }
}
