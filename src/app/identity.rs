//! Who the app is, derived from its name and namespace alone: its GUID and version (stable
//! across rebuilds), its space and org. Staging puts them in `VCAP_APPLICATION`; the
//! Kubernetes objects carry them in names, labels and annotations. Pure and deterministic.

use sha2::{Digest, Sha256};

/// Space and org name used when none is given.
pub const DEFAULT_SPACE_ORG: &str = "dropship";

/// A UUID-formatted string from sha256(`input`): the first 16 bytes with the version nibble
/// set to 5 and the RFC 4122 variant bits, like a name-based UUID (sha256, not SHA-1).
pub fn name_uuid(input: &str) -> String {
    let hash = Sha256::digest(input.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// From sha256("dropship-app:" + namespace + "/" + name); no namespace counts as "".
pub fn app_guid(namespace: &str, name: &str) -> String {
    name_uuid(&format!("dropship-app:{namespace}/{name}"))
}

/// From sha256("dropship-version:" + app_guid): the same for every build of the app, so
/// that a rebuilt app updates its StatefulSet in place (see `k8s::Identity::version`).
pub fn version(app_guid: &str) -> String {
    name_uuid(&format!("dropship-version:{app_guid}"))
}

/// The app's identity as staging and the Kubernetes objects name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIdentity {
    pub guid: String,
    pub version: String,
    pub space_name: String,
    pub org_name: String,
}

impl AppIdentity {
    /// The identity of the app `name` in `namespace` (`None` and `""` alike).
    pub fn new(namespace: Option<&str>, name: &str) -> AppIdentity {
        let guid = app_guid(namespace.unwrap_or(""), name);
        AppIdentity {
            version: version(&guid),
            guid,
            space_name: DEFAULT_SPACE_ORG.to_string(),
            org_name: DEFAULT_SPACE_ORG.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_depends_on_name_and_namespace_only() {
        let a = AppIdentity::new(None, "shop");
        assert_eq!(a, AppIdentity::new(Some(""), "shop"));
        assert_ne!(a.guid, AppIdentity::new(Some("prod"), "shop").guid);
        assert_eq!(a.version, version(&a.guid));
        assert_eq!(a.space_name, DEFAULT_SPACE_ORG);
    }

    #[test]
    fn uuid_shape() {
        let u = name_uuid("x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5", "version nibble");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "variant bits");
    }
}
