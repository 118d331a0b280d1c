//! Image references in the containers-image transport syntax:
//! `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (also the meaning of a reference with no
//! transport) and `oci:DIR[:TAG]` (an OCI image layout on disk).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct RefError {
    pub input: String,
    pub reason: String,
}

/// Where an image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Registry(RegistryRef),
    Layout(LayoutRef),
}

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host[:port]`, e.g. `127.0.0.1:5000` or `docker.io`.
    pub registry: String,
    /// e.g. `apps/foo` or `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// An image in an OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    pub dir: PathBuf,
    /// The `org.opencontainers.image.ref.name` annotation; `None` means "the only image".
    pub tag: Option<String>,
}

impl RegistryRef {
    /// The tag or digest part, as used in `/v2/<repo>/manifests/<reference>`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository, named by digest.
    pub fn with_digest(&self, digest: &str) -> RegistryRef {
        RegistryRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// `HOST/REPO` (no tag, no digest).
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The registry host without port, for loopback detection.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map(|(h, _)| h).unwrap_or(r)
    }

    /// Loopback registries speak plain HTTP, as Docker does.
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost" || h == "::1" || h.starts_with("127.")
    }

    /// Reference as `oci_client` understands it.
    pub fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => oci_client::Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
                d.clone(),
            ),
            (None, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
            ImageRef::Layout(l) => {
                write!(f, "oci:{}", l.dir.display())?;
                if let Some(t) = &l.tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
        }
    }
}

fn err(input: &str, reason: impl Into<String>) -> RefError {
    RefError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        _ => false,
    }
}

fn valid_repo(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

impl FromStr for RegistryRef {
    type Err = RefError;

    fn from_str(input: &str) -> Result<Self, RefError> {
        let s = input.strip_prefix("docker://").unwrap_or(input);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(err(input, format!("{d:?} is not a sha256 digest")));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(err(input, format!("{t:?} is not a valid tag")));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, repo))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), repo.to_string())
            }
            Some(_) => ("docker.io".to_string(), name.to_string()),
            None => ("docker.io".to_string(), format!("library/{name}")),
        };
        if !valid_repo(&repository) {
            return Err(err(
                input,
                format!("{repository:?} is not a valid repository name (lowercase letters, digits, . _ - and /)"),
            ));
        }
        Ok(RegistryRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl FromStr for ImageRef {
    type Err = RefError;

    fn from_str(input: &str) -> Result<Self, RefError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(err(input, "an oci: reference needs a directory"));
            }
            // `oci:DIR[:TAG]`: the tag follows the last ':' when it contains no '/'.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !d.is_empty() => {
                    if !valid_tag(t) {
                        return Err(err(input, format!("{t:?} is not a valid tag")));
                    }
                    (d, Some(t.to_string()))
                }
                _ => (rest, None),
            };
            return Ok(ImageRef::Layout(LayoutRef {
                dir: PathBuf::from(dir),
                tag,
            }));
        }
        if let Some((transport, _)) = input.split_once(':') {
            if !input.starts_with("docker://")
                && [
                    "dir",
                    "docker-archive",
                    "oci-archive",
                    "containers-storage",
                    "docker-daemon",
                ]
                .contains(&transport)
            {
                return Err(err(
                    input,
                    format!("transport {transport:?} is not supported (use docker:// or oci:)"),
                ));
            }
        }
        if let Some(transport) = unknown_transport(input) {
            return Err(err(
                input,
                format!("unknown transport {transport} (use docker:// or oci:)"),
            ));
        }
        Ok(ImageRef::Registry(input.parse()?))
    }
}

/// `NAME://...` with a NAME other than docker, or `NAME:X/...` where X is not a port number
/// (a registry's `HOST:PORT/`): a transport this tool does not know.
fn unknown_transport(input: &str) -> Option<&str> {
    if let Some((name, _)) = input.split_once("://") {
        return (name != "docker").then_some(name);
    }
    let (name, rest) = input.split_once(':')?;
    let port = rest.split('/').next().unwrap_or("");
    let looks_like_port = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    let is_host = name.contains('.') || name == "localhost" || name.starts_with('[');
    (!name.contains('/') && rest.contains('/') && !looks_like_port && !is_host).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_refs() {
        let r: RegistryRef = "docker://127.0.0.1:5000/apps/foo:1".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "apps/foo");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert!(r.is_loopback());
        let r: RegistryRef = "localhost:5000/x".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.tag.as_deref()),
            ("localhost:5000", None)
        );
        let r: RegistryRef = "debian".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/debian");
        assert!(!r.is_loopback());
        let d = format!("sha256:{}", "a".repeat(64));
        let r: RegistryRef = format!("reg.example.com/a/b@{d}").parse().unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.reference(), d);
        assert!("reg.example.com/A:1".parse::<RegistryRef>().is_err());
        assert!("reg.example.com/a@sha256:xyz"
            .parse::<RegistryRef>()
            .is_err());
    }

    #[test]
    fn parses_layout_refs() {
        let r: ImageRef = "oci:/tmp/lay:foo".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Layout(LayoutRef {
                dir: "/tmp/lay".into(),
                tag: Some("foo".into())
            })
        );
        let r: ImageRef = "oci:out/img".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Layout(LayoutRef {
                dir: "out/img".into(),
                tag: None
            })
        );
        assert!("docker-archive:/x.tar".parse::<ImageRef>().is_err());
        for bad in ["dockr://x/y", "dockr:x/y", "https://reg.example.com/a"] {
            let e = bad.parse::<ImageRef>().unwrap_err().to_string();
            assert!(
                e.contains("unknown transport") && e.contains("use docker:// or oci:"),
                "{e}"
            );
        }
        for good in ["debian:12", "localhost:5000/x", "reg.example.com:443/a/b:1"] {
            assert!(good.parse::<ImageRef>().is_ok(), "{good}");
        }
    }
}
