//! What goes to the upload endpoint: a zip app as it is, or a zip of a directory app's
//! directories, symlinks and the files the server does not have (written to a temporary file,
//! modes kept; files that do not deflate are stored).

use super::scan::{Entry, Scanned};
use anyhow::{Context, Result};
use dropship::cfapi as cf;
use dropship::intake::dir;
use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// What goes to the upload endpoint.
pub(super) struct Bits {
    /// The zip (positioned anywhere; rewound before sending), None when there is nothing to
    /// send.
    pub(super) zip: Option<std::fs::File>,
    pub(super) len: u64,
    /// Regular files in the zip.
    pub(super) files: usize,
    /// Files the server already has (the `resources` field).
    pub(super) matched: Vec<cf::Resource>,
}

impl Bits {
    /// A zip source goes as it is: no matching.
    pub(super) fn from_zip(path: &Path) -> Result<Bits> {
        let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let len = f.metadata()?.len();
        // Only to say how many files go up; the server judges the zip.
        let files = zip::ZipArchive::new(&mut f)
            .map(|z| {
                z.file_names()
                    .filter(|n| n.as_ref().is_ok_and(|n| !n.ends_with('/')))
                    .count()
            })
            .unwrap_or(0);
        f.rewind()?;
        Ok(Bits {
            zip: Some(f),
            len,
            files,
            matched: Vec::new(),
        })
    }
}

/// Does the start of this file fail to deflate (media, archives, random data)? Such files are
/// stored in the zip: deflating them costs far more time than it saves bytes.
fn incompressible(f: &mut std::fs::File, size: u64) -> std::io::Result<bool> {
    const SAMPLE: usize = 128 * 1024;
    if size < 16 * 1024 {
        return Ok(false);
    }
    let mut sample = Vec::with_capacity(SAMPLE);
    Read::by_ref(f)
        .take(SAMPLE as u64)
        .read_to_end(&mut sample)?;
    f.rewind()?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&sample)?;
    let packed = enc.finish()?.len();
    Ok(packed * 100 >= sample.len() * 97)
}

/// Zips the directories, the symlinks and the files the server does not have into a
/// temporary file (deleted when closed). Files that do not deflate are stored.
pub(super) fn zip_unmatched(
    src: &Path,
    scanned: Scanned,
    matched: &HashSet<(String, u64)>,
) -> Result<Bits> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;
    let tmp = tempfile::tempfile().context("creating a temporary file for the upload")?;
    let mut w = zip::ZipWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp));
    let base = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut files = 0;
    let mut matched_list = Vec::new();
    for e in &scanned.entries {
        match e {
            Entry::Dir { path, mode } => {
                w.add_directory(format!("{path}/"), base.unix_permissions(*mode))?;
            }
            Entry::Symlink { path, target } => {
                w.add_symlink(path, target, base.unix_permissions(0o777))?;
            }
            Entry::File(i) => {
                let r = &scanned.files[*i];
                if r.size > 0 && matched.contains(&(r.sha1.clone(), r.size)) {
                    matched_list.push(r.cf());
                    continue;
                }
                let (mut f, meta) = dir::open_file(&src.join(&r.path))?;
                let context = || format!("zipping {}", r.path);
                let method = if incompressible(&mut f, meta.len()).with_context(context)? {
                    CompressionMethod::Stored
                } else {
                    CompressionMethod::Deflated
                };
                // Sized as it is now: it may have changed since it was hashed, which is
                // harmless for a file that is uploaded (its hash was only used for matching).
                let opts = base
                    .compression_method(method)
                    .unix_permissions(r.mode)
                    .large_file(meta.len() >= u32::MAX as u64);
                w.start_file(&r.path, opts)?;
                std::io::copy(&mut f, &mut w).with_context(context)?;
                files += 1;
            }
        }
    }
    let tmp = w
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the upload's zip")?;
    // Everything matched (and no directory or symlink): no bits at all, only resources.
    let zipped = scanned.entries.len() - matched_list.len();
    if zipped == 0 && !matched_list.is_empty() {
        return Ok(Bits {
            zip: None,
            len: 0,
            files,
            matched: matched_list,
        });
    }
    let len = tmp.metadata()?.len();
    Ok(Bits {
        zip: Some(tmp),
        len,
        files,
        matched: matched_list,
    })
}

#[cfg(test)]
mod tests {
    use super::super::scan::scan;
    use super::*;
    use serde_json::json;

    #[test]
    fn zips_unmatched_files_dirs_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path();
        std::fs::create_dir(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(src.join("bin/run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(src.join("index.html"), "hello\n").unwrap();
        std::os::unix::fs::symlink("bin/run", src.join("start")).unwrap();
        // Incompressible bytes are stored, text is deflated.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(src.join("noise.bin"), &noise).unwrap();
        std::fs::write(src.join("text.txt"), "lorem ipsum ".repeat(8000)).unwrap();
        let scanned = scan(src).unwrap();
        let matched: HashSet<_> =
            [("f572d396fae9206628714fb2ce00f72e94f2258f".to_string(), 6)].into();
        let bits = zip_unmatched(src, scanned, &matched).unwrap();
        assert_eq!(bits.files, 3);
        assert_eq!(
            serde_json::to_value(&bits.matched).unwrap(),
            json!([{"checksum": {"value": "f572d396fae9206628714fb2ce00f72e94f2258f"},
                    "size_in_bytes": 6, "path": "index.html", "mode": "644"}])
        );
        let mut f = bits.zip.unwrap();
        f.rewind().unwrap();
        let mut z = zip::ZipArchive::new(f).unwrap();
        let mut seen = Vec::new();
        for i in 0..z.len() {
            let e = z.by_index(i).unwrap();
            seen.push((
                e.name().unwrap().to_string(),
                e.unix_mode().unwrap(),
                e.is_symlink(),
                e.compression() == zip::CompressionMethod::Stored,
            ));
        }
        assert_eq!(
            seen,
            [
                ("bin/".to_string(), 0o40755, false, true),
                ("bin/run".to_string(), 0o100755, false, false),
                ("noise.bin".to_string(), 0o100644, false, true),
                ("start".to_string(), 0o120777, true, true),
                ("text.txt".to_string(), 0o100644, false, false),
            ]
        );
        let mut content = Vec::new();
        z.by_name("noise.bin")
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, noise);
    }
}
