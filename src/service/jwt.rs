//! Signed tokens: the built-in login's ES256 key (a PKCS#8 P-256 PEM file, configured or made at
//! first start in the data dir, mode 0600, so tokens outlive a restart), signing, verification,
//! and the public key as a JWK for `GET /token_keys`. With an external issuer, only its public
//! key (RSA or EC PEM) verifies its tokens. Tokens are never logged.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

/// A token's claims, as UAA writes them (external issuers' tokens may lack some).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct Claims {
    pub jti: String,
    pub sub: String,
    pub scope: Vec<String>,
    pub client_id: String,
    pub cid: String,
    pub azp: String,
    pub grant_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub zid: String,
    pub aud: Value,
}

impl Claims {
    /// Refresh tokens' ids end in `-r`, as UAA's.
    pub fn is_refresh(&self) -> bool {
        self.jti.ends_with("-r")
    }
}

/// Keys and what a valid token must say.
pub struct Keys {
    /// None with an external issuer: dropship then issues nothing.
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    alg: Algorithm,
    pub kid: String,
    /// The public key as a JWK (built-in key only).
    jwk: Option<Value>,
    pub issuer: String,
    /// The `iss` values accepted.
    accepted: Vec<String>,
    leeway: u64,
}

/// The base64 body of a PEM file.
fn pem_der(text: &str) -> Result<Vec<u8>, String> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("not a PEM file: {e}"))
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// A new P-256 key at `path` (0600, whole or not at all: a temporary file linked into place
/// without replacing one). When another process sharing the data dir made one first, theirs
/// is kept and returned, so that both sign with the same key.
fn generate(path: &Path) -> Result<String, String> {
    use std::io::Write;
    let rng = ring::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "generating the signing key failed".to_string())?;
    let text = pem(der.as_ref());
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    // NamedTempFile makes its file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(at)?;
    tmp.write_all(text.as_bytes()).map_err(at)?;
    tmp.as_file().sync_all().map_err(at)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!("made a token signing key: {}", path.display());
            Ok(text)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map_err(at)
        }
        Err(e) => Err(at(e.error)),
    }
}

impl Keys {
    /// The built-in issuer's keys: from `configured` (a PKCS#8 P-256 PEM), else from
    /// `generated` (made when missing).
    pub fn built_in(
        configured: Option<&Path>,
        generated: &Path,
        issuer: String,
    ) -> Result<Keys, String> {
        let path = configured.unwrap_or(generated);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && configured.is_none() => {
                generate(path)?
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let der = pem_der(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| format!("{}: not a PKCS#8 P-256 key ({e})", path.display()))?;
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        let verifying = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        let kid = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(point)[..8])
        };
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid,
                         "alg": "ES256", "use": "sig"});
        Ok(Keys {
            signing: Some(EncodingKey::from_ec_der(&der)),
            verifying,
            alg: Algorithm::ES256,
            kid,
            jwk: Some(jwk),
            accepted: vec![issuer.clone()],
            issuer,
            leeway: 0,
        })
    }

    /// An external issuer's public key (RSA: RS256, else EC P-256: ES256). Tokens whose `iss`
    /// is `issuer` or, as UAA writes it, `issuer/oauth/token` are accepted.
    pub fn external(public_key: &Path, issuer: String) -> Result<Keys, String> {
        let base = issuer.trim_end_matches('/');
        let base = base
            .strip_suffix("/oauth/token")
            .unwrap_or(base)
            .to_string();
        let accepted = vec![base.clone(), format!("{base}/oauth/token")];
        let text =
            std::fs::read(public_key).map_err(|e| format!("{}: {e}", public_key.display()))?;
        let (verifying, alg) = match DecodingKey::from_rsa_pem(&text) {
            Ok(k) => (k, Algorithm::RS256),
            Err(_) => (
                DecodingKey::from_ec_pem(&text).map_err(|e| {
                    format!("{}: not an RSA or EC public key: {e}", public_key.display())
                })?,
                Algorithm::ES256,
            ),
        };
        Ok(Keys {
            signing: None,
            verifying,
            alg,
            kid: String::new(),
            jwk: None,
            issuer: base,
            accepted,
            leeway: 30,
        })
    }

    pub fn issues(&self) -> bool {
        self.signing.is_some()
    }

    pub fn jwk(&self) -> Option<&Value> {
        self.jwk.as_ref()
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let key = self
            .signing
            .as_ref()
            .ok_or("tokens come from the external issuer")?;
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string())
    }

    /// The claims of a token this issuer signed that has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let mut v = Validation::new(self.alg);
        v.leeway = self.leeway;
        v.validate_aud = false;
        v.set_issuer(&self.accepted);
        v.set_required_spec_claims(&["exp", "iss"]);
        jsonwebtoken::decode::<Claims>(token, &self.verifying, &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_keeps_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let keys = Keys::built_in(None, &path, "http://x/oauth/token".into()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let claims = Claims {
            jti: "abc".into(),
            exp: now() + 60,
            iss: keys.issuer.clone(),
            ..Default::default()
        };
        let token = keys.sign(&claims).unwrap();
        let again = Keys::built_in(None, &path, "http://x/oauth/token".into()).unwrap();
        assert_eq!(again.verify(&token).unwrap().jti, "abc", "the key was kept");
        let other = Keys::built_in(None, &dir.path().join("k2"), keys.issuer.clone()).unwrap();
        assert!(other.verify(&token).is_err(), "another key's token");
        let expired = Claims {
            exp: now() - 1,
            ..claims
        };
        assert!(keys.verify(&keys.sign(&expired).unwrap()).is_err());
    }

    #[test]
    fn processes_starting_at_once_share_the_key_one_of_them_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let iss = "http://x/oauth/token".to_string();
        let made: Vec<Keys> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Keys::built_in(None, &path, iss.clone()).unwrap()))
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let claims = Claims {
            exp: now() + 60,
            iss: iss.clone(),
            ..Default::default()
        };
        let token = made[3].sign(&claims).unwrap();
        for keys in &made {
            assert!(keys.verify(&token).is_ok(), "one key for all");
        }
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 1, "no temporary file left");
    }

    #[test]
    fn an_external_issuers_public_key_verifies_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let iss = "https://uaa.example.com/oauth/token".to_string();
        let signer = Keys::built_in(None, &dir.path().join("k.pem"), iss.clone()).unwrap();
        // The signer's public key as SubjectPublicKeyInfo PEM (P-256's fixed DER prefix).
        let jwk = signer.jwk().unwrap();
        let coord = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.push(4);
        der.extend(coord("x"));
        der.extend(coord("y"));
        let b64 = STANDARD.encode(&der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        let pem_path = dir.path().join("pub.pem");
        std::fs::write(&pem_path, pem).unwrap();
        let verifier = Keys::external(&pem_path, iss.clone()).unwrap();
        assert!(!verifier.issues());
        let claims = Claims {
            jti: "ext".into(),
            exp: now() + 60,
            iss,
            ..Default::default()
        };
        let token = signer.sign(&claims).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().jti, "ext");
        let elsewhere = Keys::external(&pem_path, "https://other.example.com".into()).unwrap();
        assert!(elsewhere.verify(&token).is_err(), "another issuer's name");
    }
}
