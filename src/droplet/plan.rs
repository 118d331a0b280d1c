//! The droplet cut into stable layers (pure: a walk's entries in, groups of entries out).
//!
//! Every entry below the droplet's root goes to exactly one layer:
//! - `deps/<idx>/…`: that index's layers, unless it weighs less than a quarter of the droplet's
//!   24th (and of FLOOR: e.g. only the `config.yml` every buildpack writes): then with the app;
//! - below `app/`, whatever lies in a dependency tree (`node_modules/`, `vendor/`, `.venv/`,
//!   `site-packages/`): the app's dependency layers, which rarely change;
//! - everything else (the app's own code, `profile.d/`, `staging_info.yml`, …): the layers
//!   that change on every commit.
//!
//! A group is cut into chunks along the walk's (sorted) order where the paths themselves say
//! so: after an entry of `w` tar bytes whose path hashes below `w / target` (content-defined
//! chunking over the file list, weighted by size so that chunks average `target` bytes), once
//! the chunk holds `target / 4`; always at `2 × target`. A file of `target` bytes or more is a
//! layer of its own. An edit moves at most the boundaries next to the file; a rename elsewhere
//! touches only the chunk that holds it. `target` is `max(FLOOR, next power of two of
//! bytes / aim)`, aiming at 16 chunks for what rarely changes and 16 for the app's own files
//! (usually far lighter: smaller chunks where the edits are; measured in README, "Stable
//! layers"): a one-file change rebuilds one or two `target`-sized layers, the count stays near
//! 24, and a target only moves when its part of the droplet doubles. Above [`MAX_LAYERS`], the two adjacent chunks lightest together are merged.

use sha2::{Digest, Sha256};
use std::path::{Component, Path};

/// Most layers a droplet becomes (the launcher makes the image's 32nd new layer).
pub const MAX_LAYERS: usize = 31;
/// Smallest chunk target: below this, a layer's fixed costs (a HEAD, an upload's two requests,
/// a manifest entry) outweigh what a finer cut saves. See README (layers).
pub const FLOOR: u64 = 512 * 1024;
/// How many chunks the target aims at for the whole droplet (what makes a `deps/<idx>` too
/// light for layers of its own), for what rarely changes, and for the app's own files.
const AIM: u64 = 24;
const AIM_STABLE: u64 = 16;
/// 8 made the 6,000-file app's own chunks 2 MiB: an edit uploaded up to 1.25 MB (README).
const AIM_APP: u64 = 16;
/// Directory names whose trees are dependencies (change rarely).
pub const DEPENDENCY_DIRS: [&str; 4] = ["node_modules", "vendor", ".venv", "site-packages"];

/// What a layer of the droplet holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// `deps/<idx>` of a buildpack.
    Deps(String),
    /// The app's dependency trees and large files.
    Dependencies,
    /// What changes with every commit.
    App,
}

impl Group {
    pub fn describe(&self) -> String {
        match self {
            Group::Deps(idx) => format!("deps/{idx}"),
            Group::Dependencies => "app dependencies".into(),
            Group::App => "app".into(),
        }
    }
}

/// One layer of the droplet: indices into the walk, in walk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub group: Group,
    pub entries: Vec<usize>,
    /// Bytes of tar its entries make (headers and padded contents), parents not counted.
    pub weight: u64,
}

/// An entry of the droplet's walk, as the plan sees it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// Below the droplet's root; empty for the root.
    pub rel: &'a Path,
    /// A regular file's size.
    pub file: Option<u64>,
}

/// Bytes an entry makes in a tar: a header, and the contents padded to 512.
pub fn weight(e: &Item) -> u64 {
    512 + e.file.unwrap_or(0).div_ceil(512) * 512
}

/// The chunk target for entries weighing `total` bytes cut in about `aim` chunks.
pub fn target(total: u64, aim: u64) -> u64 {
    (total / aim).max(1).next_power_of_two().max(FLOOR)
}

fn group_of(rel: &Path) -> Group {
    let mut parts = rel.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s.to_string_lossy()),
        _ => None,
    });
    match parts.next().as_deref() {
        Some("deps") => match parts.next() {
            Some(idx) => Group::Deps(idx.into_owned()),
            None => Group::App,
        },
        Some("app") if parts.any(|p| DEPENDENCY_DIRS.contains(&p.as_ref())) => Group::Dependencies,
        _ => Group::App,
    }
}

/// Whether the walk may cut after `rel`, an entry of `w` bytes: true for about one entry
/// in `target / w`, decided by the path's sha256 alone (the same on every machine).
fn cuts_after(rel: &Path, w: u64, target: u64) -> bool {
    let h = Sha256::digest(rel.as_os_str().as_encoded_bytes());
    let h = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    u128::from(h) * u128::from(target) < u128::from(w) << 64
}

/// The droplet's layers: `entries` is its walk (the root, with an empty path, is left out:
/// every layer holds it).
pub fn plan(entries: &[Item]) -> Vec<Chunk> {
    let mut groups: Vec<(Group, Vec<usize>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.rel.as_os_str().is_empty() {
            continue;
        }
        let g = group_of(e.rel);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(i),
            None => groups.push((g, vec![i])),
        }
    }
    let weigh = |v: &[usize]| v.iter().map(|&i| weight(&entries[i])).sum::<u64>();
    let total = weigh(&(0..entries.len()).collect::<Vec<_>>());
    fold_light_deps(&mut groups, |v| weigh(v) < target(total, AIM) / 4);
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let app: u64 = groups
        .iter()
        .filter(|(g, _)| *g == Group::App)
        .map(|(_, v)| weigh(v))
        .sum();
    let (stable, own) = (target(total - app, AIM_STABLE), target(app, AIM_APP));
    let mut chunks = Vec::new();
    for (g, idx) in groups {
        let t = if g == Group::App { own } else { stable };
        cut(&g, &idx, entries, t, &mut chunks);
    }
    merge_down(&mut chunks, MAX_LAYERS);
    chunks
}

/// A `deps/<idx>` that is `light` (e.g. only the `config.yml` every buildpack writes) is no
/// layer of its own: it rides with the app.
fn fold_light_deps(groups: &mut Vec<(Group, Vec<usize>)>, light: impl Fn(&[usize]) -> bool) {
    let small = |(g, v): &(Group, Vec<usize>)| matches!(g, Group::Deps(_)) && light(v);
    let moved: Vec<usize> = groups
        .iter()
        .filter(|x| small(x))
        .flat_map(|(_, v)| v.clone())
        .collect();
    groups.retain(|x| !small(x));
    if moved.is_empty() {
        return;
    }
    match groups.iter_mut().find(|(k, _)| *k == Group::App) {
        Some((_, v)) => {
            v.extend(moved);
            v.sort_unstable();
        }
        None => groups.push((Group::App, moved)),
    }
}

/// Cuts one group into chunks (appended to `out`).
fn cut(g: &Group, idx: &[usize], entries: &[Item], target: u64, out: &mut Vec<Chunk>) {
    let new = || Chunk {
        group: g.clone(),
        entries: Vec::new(),
        weight: 0,
    };
    let mut cur = new();
    for &i in idx {
        let e = &entries[i];
        let w = weight(e);
        let large = e.file.is_some_and(|n| n >= target);
        if large && !cur.entries.is_empty() {
            out.push(std::mem::replace(&mut cur, new()));
        }
        cur.entries.push(i);
        cur.weight += w;
        let ends = large
            || cur.weight >= 2 * target
            || (cur.weight >= target / 4 && cuts_after(e.rel, w, target));
        if ends {
            out.push(std::mem::replace(&mut cur, new()));
        }
    }
    if !cur.entries.is_empty() {
        out.push(cur);
    }
}

/// Merges the two adjacent chunks lightest together until at most `max` are left.
fn merge_down(chunks: &mut Vec<Chunk>, max: usize) {
    while chunks.len() > max {
        let i = (0..chunks.len() - 1)
            .min_by_key(|&i| chunks[i].weight + chunks[i + 1].weight)
            .expect("more than one chunk");
        let next = chunks.remove(i + 1);
        let c = &mut chunks[i];
        c.entries.extend(next.entries);
        c.entries.sort_unstable();
        c.weight += next.weight;
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
