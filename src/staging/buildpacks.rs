//! Finding buildpacks: the detection order of a buildpacks directory (lexical, unless an
//! `order` file says otherwise; buildpacks it does not name come after, never left out), and
//! `--buildpack NAME|PATH` (a directory or a zip).

use crate::intake;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildpack {
    /// Name used in logs, metadata and the sandbox path `/tmp/buildpacks/<name>`.
    pub name: String,
    /// The directory holding `bin/`.
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildpackError {
    #[error(
        "buildpacks directory {0} does not exist (set --buildpacks-dir or DROPSHIP_BUILDPACKS_DIR)"
    )]
    NoDir(PathBuf),
    #[error("{dir}/order names {name:?}, which is not a buildpack directory there")]
    BadOrder { dir: PathBuf, name: String },
    #[error("buildpack {0:?} not found: not a name in {1} nor a path to a directory or zip")]
    NotFound(String, PathBuf),
    #[error("malformed buildpack {0}: it has no bin/ directory")]
    Malformed(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("buildpack zip {path}: {source}")]
    Zip {
        path: PathBuf,
        source: intake::IntakeError,
    },
}

/// CF accepts a buildpack whose single top-level directory holds `bin/`.
fn bin_root(dir: &Path) -> Result<PathBuf, BuildpackError> {
    if dir.join("bin").is_dir() {
        return Ok(dir.to_path_buf());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| BuildpackError::Io {
            what: format!("reading {}", dir.display()),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [only] if only.join("bin").is_dir() => Ok(only.clone()),
        _ => Err(BuildpackError::Malformed(dir.to_path_buf())),
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_start_matches('.').to_string()
}

/// A buildpacks directory's detection order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionOrder {
    pub buildpacks: Vec<Buildpack>,
    /// Buildpacks of the directory that its `order` file does not name: tried after the
    /// listed ones, by name (the caller says so in the build's log).
    pub unlisted: Vec<String>,
}

/// The names of the buildpacks (directories holding `bin/`) in `dir`, sorted.
fn buildpack_names(dir: &Path) -> Result<Vec<String>, BuildpackError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| BuildpackError::Io {
            what: format!("reading {}", dir.display()),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bin").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The buildpacks of `dir` in detection order: those its `order` file names, in that order,
/// then the others by name; without an `order` file, all by name.
pub fn detection_order(dir: &Path) -> Result<DetectionOrder, BuildpackError> {
    if !dir.is_dir() {
        return Err(BuildpackError::NoDir(dir.to_path_buf()));
    }
    let all = buildpack_names(dir)?;
    let order = dir.join("order");
    let (names, unlisted) = if order.is_file() {
        let listed: Vec<String> = std::fs::read_to_string(&order)
            .map_err(|source| BuildpackError::Io {
                what: format!("reading {}", order.display()),
                source,
            })?
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let unlisted: Vec<String> = all.into_iter().filter(|n| !listed.contains(n)).collect();
        let names = listed.into_iter().chain(unlisted.clone()).collect();
        (names, unlisted)
    } else {
        (all, Vec::new())
    };
    let buildpacks = names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            if !path.join("bin").is_dir() {
                return Err(BuildpackError::BadOrder {
                    dir: dir.to_path_buf(),
                    name,
                });
            }
            Ok(Buildpack { name, dir: path })
        })
        .collect::<Result<_, _>>()?;
    Ok(DetectionOrder {
        buildpacks,
        unlisted,
    })
}

/// Resolves `--buildpack SPEC`: a name in `dir`, else a path to a directory or a zip (which is
/// extracted, with the same checks as app zips, under `unpack_to`).
pub fn resolve(spec: &str, dir: &Path, unpack_to: &Path) -> Result<Buildpack, BuildpackError> {
    let by_name = dir.join(spec);
    if !spec.contains('/') && by_name.join("bin").is_dir() {
        return Ok(Buildpack {
            name: spec.to_string(),
            dir: by_name,
        });
    }
    let path = &std::path::absolute(spec).unwrap_or_else(|_| PathBuf::from(spec));
    let stem = path
        .file_stem()
        .map(|s| sanitize(&s.to_string_lossy()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "buildpack".to_string());
    if path.is_dir() {
        return Ok(Buildpack {
            name: stem,
            dir: bin_root(path)?,
        });
    }
    if path.is_file() {
        let dest = unpack_to.join(&stem);
        std::fs::create_dir_all(&dest).map_err(|source| BuildpackError::Io {
            what: format!("creating {}", dest.display()),
            source,
        })?;
        intake::extract_zip(path, &dest, &intake::Limits::default()).map_err(|source| {
            BuildpackError::Zip {
                path: path.to_path_buf(),
                source,
            }
        })?;
        return Ok(Buildpack {
            name: stem,
            dir: bin_root(&dest)?,
        });
    }
    Err(BuildpackError::NotFound(
        spec.to_string(),
        dir.to_path_buf(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(root: &Path, name: &str) {
        std::fs::create_dir_all(root.join(name).join("bin")).unwrap();
    }

    #[test]
    fn order_file_or_lexical() {
        let d = tempfile::tempdir().unwrap();
        for n in ["zeta", "alpha", "mid"] {
            bp(d.path(), n);
        }
        std::fs::create_dir_all(d.path().join("not-a-buildpack")).unwrap();
        let names =
            |o: DetectionOrder| o.buildpacks.into_iter().map(|b| b.name).collect::<Vec<_>>();
        let all = detection_order(d.path()).unwrap();
        assert!(all.unlisted.is_empty());
        assert_eq!(names(all), ["alpha", "mid", "zeta"]);
        std::fs::write(d.path().join("order"), "# first\nzeta\n\nalpha # comment\n").unwrap();
        let o = detection_order(d.path()).unwrap();
        assert_eq!(o.unlisted, ["mid"]);
        assert_eq!(names(o), ["zeta", "alpha", "mid"]);
        std::fs::write(d.path().join("order"), "ghost\n").unwrap();
        let err = detection_order(d.path()).unwrap_err().to_string();
        assert!(err.contains("\"ghost\""), "{err}");
    }

    #[test]
    fn resolves_names_and_paths() {
        let d = tempfile::tempdir().unwrap();
        bp(d.path(), "binary");
        let work = d.path().join("work");
        assert_eq!(
            resolve("binary", d.path(), &work).unwrap().dir,
            d.path().join("binary")
        );
        // A directory whose only child holds bin/ (as GitHub zips are laid out).
        bp(&d.path().join("outer"), "inner-1.2");
        let outer = d.path().join("outer");
        let b = resolve(outer.to_str().unwrap(), Path::new("/nonexistent"), &work).unwrap();
        assert_eq!((b.name.as_str(), b.dir), ("outer", outer.join("inner-1.2")));
        let err = resolve("nope", d.path(), &work).unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
    }
}
