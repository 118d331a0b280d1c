//! The registry client: oci-client underneath, with what it leaves to its callers — retries
//! with backoff on transient failures, 202-on-mount handled as "not mounted", streaming blobs
//! from and to files, index resolution to linux/amd64, and errors that name the registry answer.

use super::auth::Credentials;
use super::retry::{unreachable, worth_retrying};
use super::stream_upload::PushAuth;
use super::wire::file_chunks;
pub use super::wire::{manifest_media_type, pick_platform, RawManifest, RegistryOptions};
use super::{describe, RegistryError};
use crate::image::media;
use crate::layer::hash::{sha256_digest, HashWriter};
use crate::refs::RegistryRef;
use crate::report::{warn, Meter, Reporter};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Registry {
    /// Reads (manifests, blobs): oci-client's pull calls always register credentials.
    client: Arc<oci_client::Client>,
    /// Writes and HEADs: credentials registered only where the registry asks for them, since
    /// oci-client probes `/v2/` before every request of a registered registry that never
    /// challenges (an anonymous loopback registry would see twice the requests).
    push_client: Arc<oci_client::Client>,
    http: reqwest::Client,
    plain: Arc<Vec<String>>,
    probed: Arc<tokio::sync::Mutex<std::collections::HashSet<String>>>,
    /// What `GET /v2/` showed per registry: a challenge or not.
    challenged: Arc<tokio::sync::Mutex<std::collections::HashMap<String, bool>>>,
    /// Credentials resolved per `HOST/REPO` (a helper runs once per repository).
    creds: Arc<tokio::sync::Mutex<std::collections::HashMap<String, Credentials>>>,
    /// Registries that answered this process: a refused connection there is worth a retry.
    answered: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    opts: Arc<RegistryOptions>,
    reporter: Arc<dyn Reporter>,
}

impl Registry {
    /// A client for the registries in `in_use` (loopback ones and `opts.insecure` over HTTP).
    pub fn new(
        opts: RegistryOptions,
        in_use: &[&RegistryRef],
        reporter: Arc<dyn Reporter>,
    ) -> Result<Registry, RegistryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut plain: Vec<String> = opts.insecure.clone();
        plain.extend(
            in_use
                .iter()
                .filter(|r| r.is_loopback())
                .map(|r| r.registry.clone()),
        );
        let read_timeout = Duration::from_secs(opts.read_timeout_secs);
        let config = || ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain.clone()),
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(read_timeout),
            user_agent: concat!("dropship/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let make = |c| {
            oci_client::Client::try_from(c).map_err(|e| RegistryError::Client {
                detail: describe(&e),
            })
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(read_timeout)
            .build()
            .map_err(|e| RegistryError::Client {
                detail: e.to_string(),
            })?;
        Ok(Registry {
            client: Arc::new(make(config())?),
            push_client: Arc::new(make(config())?),
            http,
            plain: Arc::new(plain),
            probed: Default::default(),
            challenged: Default::default(),
            creds: Default::default(),
            answered: Default::default(),
            opts: Arc::new(opts),
            reporter,
        })
    }

    /// Where this client's progress and warnings go.
    pub fn reporter(&self) -> Arc<dyn Reporter> {
        self.reporter.clone()
    }

    /// The credentials for `r`'s repository (resolved once; see `auth.rs` for the order).
    async fn credentials(&self, r: &RegistryRef) -> Result<Credentials, RegistryError> {
        let mut cache = self.creds.lock().await;
        if let Some(c) = cache.get(&r.repo_name()) {
            return Ok(c.clone());
        }
        let found = self
            .opts
            .credentials
            .resolve(&r.registry, &r.repository)
            .await?;
        cache.insert(r.repo_name(), found.creds.clone());
        Ok(found.creds)
    }

    /// Registers credentials for reads.
    async fn auth(&self, r: &RegistryRef) -> Result<Credentials, RegistryError> {
        let creds = self.credentials(r).await?;
        self.client
            .store_auth_if_needed(&r.registry, &creds.to_oci())
            .await;
        Ok(creds)
    }

    /// `GET /v2/` once per registry: does it answer with a challenge (token or basic)?
    async fn probe(&self, r: &RegistryRef) -> Result<bool, OciDistributionError> {
        let mut known = self.challenged.lock().await;
        if let Some(c) = known.get(&r.registry) {
            return Ok(*c);
        }
        let scheme = if self.plain.contains(&r.registry) {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{}/v2/", r.registry);
        let res = self.http.get(url).send().await?;
        let challenges = res
            .headers()
            .contains_key(reqwest::header::WWW_AUTHENTICATE);
        self.mark_answered(&r.registry);
        known.insert(r.registry.clone(), challenges);
        Ok(challenges)
    }

    /// Does the registry ask for credentials? Unknown counts as yes: registering anonymous
    /// access costs requests, not correctness.
    async fn challenges(&self, r: &RegistryRef) -> bool {
        self.probe(r).await.unwrap_or(true)
    }

    /// Fails at once when `r`'s registry cannot be reached at all (DNS, refused, TLS) or its
    /// credentials cannot be had (a failing helper), so that a build does not stage for
    /// minutes towards a registry it will never reach.
    pub async fn preflight(&self, r: &RegistryRef) -> Result<(), RegistryError> {
        self.credentials(r).await?;
        match self.probe(r).await {
            Err(e) => match unreachable(&e) {
                Some(u) => Err(RegistryError::Unreachable {
                    detail: u.describe(&r.registry),
                }),
                None => Ok(()),
            },
            Ok(_) => Ok(()),
        }
    }

    /// Registers credentials for writes, once per registry, only where they are needed.
    async fn push_auth(&self, r: &RegistryRef) -> Result<(), RegistryError> {
        let mut probed = self.probed.lock().await;
        if probed.contains(&r.registry) {
            return Ok(());
        }
        let creds = self.credentials(r).await?;
        if creds != Credentials::Anonymous || self.challenges(r).await {
            self.push_client
                .store_auth_if_needed(&r.registry, &creds.to_oci())
                .await;
        }
        probed.insert(r.registry.clone());
        Ok(())
    }

    /// Runs `op` with the retry policy; transient failures are reported and retried.
    async fn retry<T, F, Fut>(
        &self,
        what: &str,
        r: &RegistryRef,
        mut op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let policy = &self.opts.retry;
        let mut attempt = 1;
        loop {
            let answered = self.answered(&r.registry);
            match op().await {
                Ok(v) => {
                    if !answered {
                        self.mark_answered(&r.registry);
                    }
                    return Ok(v);
                }
                Err(e) if attempt < policy.attempts && worth_retrying(&e, answered) => {
                    let delay = policy.jittered(attempt);
                    warn(
                        self.reporter.as_ref(),
                        format!(
                            "{}: {what} failed ({}), retry {attempt}/{} in {:.1}s",
                            r.registry,
                            describe(&e),
                            policy.attempts - 1,
                            delay.as_secs_f64()
                        ),
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.failure(what, r, e)),
            }
        }
    }

    fn answered(&self, registry: &str) -> bool {
        let set = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        set.contains(registry)
    }

    fn mark_answered(&self, registry: &str) {
        let mut set = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(registry.to_string());
    }

    /// The error for a failed `what` on `r`: one short line when the registry cannot be
    /// reached, the registry's answer otherwise.
    fn failure(&self, what: &str, r: &RegistryRef, e: OciDistributionError) -> RegistryError {
        if let Some(u) = unreachable(&e) {
            return RegistryError::Unreachable {
                detail: u.describe(&r.registry),
            };
        }
        let asked = what.starts_with("fetching manifest") || what.starts_with("listing the tags");
        if asked && super::is_not_found(&e) {
            let image = match r.digest {
                Some(_) => r.to_string(),
                None => format!("{}:{}", r.repo_name(), r.reference()),
            };
            return RegistryError::NotFound { image };
        }
        RegistryError::Remote {
            registry: r.registry.clone(),
            what: what.to_string(),
            detail: describe(&e),
        }
    }

    async fn raw_manifest(&self, r: &RegistryRef) -> Result<RawManifest, RegistryError> {
        let creds = self.auth(r).await?.to_oci();
        let oci = r.to_oci();
        let (bytes, _) = self
            .retry(&format!("fetching manifest {}", r.reference()), r, || {
                self.client
                    .pull_manifest_raw(&oci, &creds, media::ACCEPTED_MANIFESTS)
            })
            .await?;
        let digest = sha256_digest(&bytes);
        if let Some(want) = &r.digest {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {r}"),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        Ok(RawManifest {
            media_type: manifest_media_type(&bytes),
            bytes: bytes.to_vec(),
            digest,
        })
    }

    /// Whether `r`'s repository holds any tag (`false`: it does not exist yet, or is empty).
    pub async fn has_tags(&self, r: &RegistryRef) -> Result<bool, RegistryError> {
        let creds = self.auth(r).await?.to_oci();
        let oci = r.to_oci();
        let listed = self
            .retry(&format!("listing the tags of {}", r.repo_name()), r, || {
                self.client.list_tags(&oci, &creds, Some(1), None)
            })
            .await;
        match listed {
            Ok(t) => Ok(!t.tags.is_empty()),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The image manifest of `r`, resolving an index to its linux/amd64 entry.
    pub async fn manifest(&self, r: &RegistryRef) -> Result<RawManifest, RegistryError> {
        let m = self.raw_manifest(r).await?;
        if !media::is_index(&m.media_type) {
            return Ok(m);
        }
        let digest =
            pick_platform(&m.bytes, "linux", "amd64").ok_or_else(|| RegistryError::NoPlatform {
                image: r.to_string(),
                platform: "linux/amd64".to_string(),
            })?;
        self.raw_manifest(&r.with_digest(&digest)).await
    }

    /// Downloads a blob into `dest` (atomically), checking its digest.
    pub async fn blob_to_file(
        &self,
        r: &RegistryRef,
        digest: &str,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<u64, RegistryError> {
        self.auth(r).await?;
        let oci = r.to_oci();
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
        let what = format!("downloading blob {digest}");
        self.retry(&what, r, || async {
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            let mut w = HashWriter::new(std::io::BufWriter::new(tmp));
            let mut stream = self.client.pull_blob_stream(&oci, digest).await?;
            let hex = digest.trim_start_matches("sha256:");
            let task = format!("pulling {}", &hex[..hex.len().min(12)]);
            let mut progress = size.map(|total| Meter::new(self.reporter(), task, total));
            while let Some(chunk) = stream.try_next().await? {
                w.write_all(&chunk)?;
                if let Some(p) = &mut progress {
                    p.add(chunk.len() as u64);
                }
            }
            if let Some(p) = progress {
                p.finish();
            }
            let (buf, got, n) = w.finish();
            if got != digest {
                return Err(OciDistributionError::GenericError(Some(format!(
                    "blob {digest} arrived with digest {got}"
                ))));
            }
            let tmp = buf.into_inner().map_err(|e| e.into_error())?;
            tmp.as_file().sync_all()?;
            tmp.persist(dest).map_err(|e| e.error)?;
            Ok(n)
        })
        .await
    }

    /// HEAD on a blob.
    pub async fn blob_exists(&self, r: &RegistryRef, digest: &str) -> Result<bool, RegistryError> {
        self.push_auth(r).await?;
        let oci = r.to_oci();
        self.retry(&format!("checking blob {digest}"), r, || {
            self.push_client.blob_exists(&oci, digest)
        })
        .await
    }

    /// Cross-repository mount; `false` when the registry declined (202 or an error status):
    /// the caller uploads instead.
    pub async fn mount(
        &self,
        target: &RegistryRef,
        from: &RegistryRef,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        self.push_auth(target).await?;
        let oci = target.to_oci();
        let source = from.to_oci();
        let res = self
            .retry(&format!("mounting blob {digest}"), target, || async {
                match self.push_client.mount_blob(&oci, &source, digest).await {
                    Ok(()) => Ok(true),
                    // 202: "not mounted, here is an upload session" (spec-legal).
                    Err(OciDistributionError::SpecViolationError(_)) => Ok(false),
                    Err(OciDistributionError::ServerError { code, .. }) if code < 500 => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await;
        match res {
            Ok(m) => Ok(m),
            Err(e) => {
                warn(self.reporter.as_ref(), format!("{e}; uploading instead"));
                Ok(false)
            }
        }
    }

    /// Uploads a blob from a file, streaming it; `progress` gets the bytes sent so far.
    pub async fn upload(
        &self,
        r: &RegistryRef,
        digest: &str,
        path: &Path,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), RegistryError> {
        self.push_auth(r).await?;
        let oci = r.to_oci();
        let size = std::fs::metadata(path)
            .map_err(|e| RegistryError::io(path, e))?
            .len();
        self.retry(&format!("uploading blob {digest}"), r, || {
            let progress = progress.clone();
            let path = path.to_path_buf();
            let oci = oci.clone();
            async move {
                let file = tokio::fs::File::open(&path).await?;
                progress(0);
                let stream = file_chunks(file).scan(0u64, move |sent, chunk| {
                    if let Ok(c) = &chunk {
                        *sent += c.len() as u64;
                        progress(*sent);
                    }
                    std::future::ready(Some(chunk))
                });
                self.push_client
                    .push_blob_stream(&oci, stream, digest, Some(size))
                    .await
                    .map(|_| ())
            }
        })
        .await
    }

    /// What a streamed upload (`stream_upload.rs`) needs for `r`: the HTTP client, the
    /// registry's URL, and how to authenticate pushes (a token where the registry uses them).
    pub(super) async fn push_parts(
        &self,
        r: &RegistryRef,
    ) -> Result<(reqwest::Client, reqwest::Url, PushAuth), RegistryError> {
        let creds = self.credentials(r).await?;
        let oci = r.to_oci();
        let host = oci.resolve_registry();
        let scheme = match self.plain.iter().any(|p| p == host || *p == r.registry) {
            true => "http",
            false => "https",
        };
        let origin = reqwest::Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
            RegistryError::Client {
                detail: format!("registry URL for {host}: {e}"),
            }
        })?;
        let auth = if creds == Credentials::Anonymous && !self.challenges(r).await {
            PushAuth::None
        } else {
            let (op, given) = (oci_client::RegistryOperation::Push, creds.to_oci());
            let token = self
                .retry("authenticating", r, || {
                    self.push_client.auth(&oci, &given, op)
                })
                .await?;
            match (token, creds) {
                (Some(t), _) => PushAuth::Bearer(t),
                (None, Credentials::Basic { user, password }) => PushAuth::Basic { user, password },
                _ => PushAuth::None,
            }
        };
        Ok((self.http.clone(), origin, auth))
    }

    /// PUTs a manifest (exact bytes) under `r`'s tag or digest; returns the stored digest.
    pub async fn put_manifest(
        &self,
        r: &RegistryRef,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        self.push_auth(r).await?;
        let oci = r.to_oci();
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            RegistryError::Client {
                detail: format!("bad media type {media_type:?}"),
            }
        })?;
        self.retry(&format!("pushing manifest {}", r.reference()), r, || {
            self.push_client
                .push_manifest_raw(&oci, bytes.to_vec(), content_type.clone())
        })
        .await?;
        Ok(sha256_digest(bytes))
    }
}
