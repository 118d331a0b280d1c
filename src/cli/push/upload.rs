//! The app's bits on the server: the app found by name, a package, resource matching (in
//! chunks of 1,000), the streamed upload, the wait for READY.

use super::api::Api;
use super::bits::Bits;
use super::scan::{Resource, Scanned};
use super::POLL;
use anyhow::{bail, Result};
use dropship::cfapi::{self as cf, PackageState, Paginated};
use dropship::report::{Event, Reporter};
use dropship::units::format_size;
use futures_util::TryStreamExt;
use reqwest::Method;
use std::collections::HashSet;
use std::io::Seek;
use std::time::{Duration, Instant};

/// Resource matching goes in batches of this many files (Cloud Controller takes up to 5,000).
const MATCH_BATCH: usize = 1000;
/// How long package processing may take after the upload.
const PACKAGE_WAIT: Duration = Duration::from_secs(3600);

impl Api {
    pub(super) async fn find_app(&self, name: &str) -> Result<Option<cf::App>> {
        let mut url = reqwest::Url::parse(&self.url("/v3/apps"))?;
        url.query_pairs_mut().append_pair("names", name);
        let path = &url.as_str()[self.base.len()..];
        let list: Paginated<cf::App> = self.get(path).await?;
        Ok(list.resources.into_iter().find(|a| a.name == name))
    }

    /// Asks which files the server has already; returns their (SHA-1, size).
    pub(super) async fn resource_matches(
        &self,
        scanned: &Scanned,
    ) -> Result<HashSet<(String, u64)>> {
        let mut have = HashSet::new();
        // Empty files are left out, as the cf CLI does: they cost nothing to send.
        let candidates: Vec<&Resource> = scanned.files.iter().filter(|r| r.size > 0).collect();
        for batch in candidates.chunks(MATCH_BATCH) {
            let asked = cf::ResourceMatches {
                resources: batch.iter().map(|r| r.cf()).collect(),
            };
            let answer: cf::ResourceMatches = self.post("/v3/resource_matches", &asked).await?;
            for r in answer.resources {
                have.insert((r.checksum.value.to_ascii_lowercase(), r.size_in_bytes));
            }
        }
        Ok(have)
    }

    pub(super) async fn upload(&self, package: &str, bits: Bits) -> Result<()> {
        use reqwest::multipart::{Form, Part};
        let url = self.url(&format!("/v3/packages/{package}/upload"));
        let resources = serde_json::to_string(&bits.matched)?;
        let mut form = Form::new().text("resources", resources);
        if let Some(mut f) = bits.zip {
            f.rewind()?;
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(f),
                256 * 1024,
            );
            let stream = upload_progress(stream, bits.len);
            let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), bits.len)
                .file_name("application.zip")
                .mime_str("application/zip")?;
            form = form.part("bits", part);
        }
        let (started, zipped) = (Instant::now(), bits.len);
        self.send(Method::POST, &url, |r| r.multipart(form)).await?;
        if zipped > 0 {
            let secs = started.elapsed().as_secs_f64();
            let rate = (zipped as f64 / secs.max(0.001)) as u64;
            let size = format_size(zipped);
            super::super::report::progress!(
                "    uploaded {size} in {secs:.1}s ({}/s)",
                format_size(rate)
            );
        }
        Ok(())
    }

    /// A bits package for the app; its guid.
    pub(super) async fn create_package(&self, app_guid: &str) -> Result<String> {
        let body = cf::CreatePackage::bits(app_guid);
        let package: cf::Package = self.post("/v3/packages", &body).await?;
        Ok(package.guid)
    }

    /// Polls the package until it is READY (FAILED: its error).
    pub(super) async fn wait_for_package(&self, guid: &str) -> Result<()> {
        let started = Instant::now();
        let deadline = started + PACKAGE_WAIT;
        loop {
            let p: cf::Package = self.get(&format!("/v3/packages/{guid}")).await?;
            let state = p.state;
            match state {
                PackageState::Ready => return Ok(()),
                PackageState::Failed => {
                    let error = p.data.error.as_deref().unwrap_or("no reason given");
                    bail!("the package could not be processed: {error}");
                }
                // The upload was answered with success, yet the package never took it.
                PackageState::AwaitingUpload if started.elapsed() > Duration::from_secs(60) => {
                    bail!("the package {guid} is still {state} a minute after the upload")
                }
                _ if Instant::now() > deadline => bail!(
                    "the package is still {state} after {}",
                    humantime::format_duration(PACKAGE_WAIT)
                ),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// The upload's bytes as `Event::Progress`: a bar on a terminal, a line every 5 s elsewhere.
fn upload_progress(
    stream: tokio_util::io::ReaderStream<tokio::fs::File>,
    total: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    let reporter = super::super::report::CliReporter::new();
    let mut done = 0u64;
    stream.inspect_ok(move |chunk| {
        done += chunk.len() as u64;
        let task = "uploading the app".to_string();
        reporter.event(Event::Progress { task, done, total });
    })
}
