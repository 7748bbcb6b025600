//! Where an image lives in a manifest, and the byte edits that move it to a new tag and/or digest.
//!
//! Shapes: `image: repo:tag[@digest]` strings under any `*image` key (containers, HelmRelease values, Prefect
//! `job_variables.image` and work-pool templates, in YAML or JSON; Kubernetes image volumes'
//! `image.reference`); `repository` (+ optional `registry`) blocks with `tag`/`prefectTag`/`version`/`imageTag`
//! and `digest` siblings (Helm charts, the Prefect worker chart, Bitnami); Kustomize `images:` items
//! (`name`/`newName`/`newTag`/`digest`, also under a HelmRelease's `postRenderers`) and the string form Argo
//! CD's `.argocd-source-*.yaml` overrides use, with their `helm.parameters`; Flux `OCIRepository`
//! `url`/`ref.tag`/`ref.digest`; and Flux setter markers `# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}`.
//! Values arriving through aliases and merge keys are found like literal ones (see `resolve`). Values inside
//! block scalars are never touched: they are not scalars of this document.
//!
//! A planner never writes: it returns the changes (verified by re-parsing the result), every reference it
//! found (so "already set" is only said of a file that holds the image), references it could not read, and
//! the references to other repositories it saw (for the "did you mean" of a bump that found nothing).

use super::yaml::{self, Scanned, Seg};
use crate::registry::Reference;
use serde::Serialize;
use std::collections::HashMap;

mod error;
mod marker;
mod resolve;
mod shapes;

pub use error::EditError;
use resolve::Node;

/// Whether references that hold a tag only take a new digest as well.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// Pin what was pinned (`tag@digest`, a `digest` field), keep tag-only what was tag-only.
    #[default]
    Keep,
    /// Every reference gets the digest when one is given.
    Always,
}

/// Which fields a file with Flux `$imagepolicy` markers lets flowship edit.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Markers {
    /// Every reference to the image, marked or not.
    #[default]
    Any,
    /// In a file that carries markers, only the marked fields (what Flux image automation does).
    Only,
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pin::Keep => "keep",
            Pin::Always => "always",
        })
    }
}

impl std::fmt::Display for Markers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Markers::Any => "any",
            Markers::Only => "only",
        })
    }
}

/// What to set.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `registry/repository`, normalised (see `Reference::repository_ref`).
    pub repository: String,
    /// The repository as people write it (`nginx`, `ghcr.io/org/app`): what a Flux `:name` setter gets.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// Flux policies (`ns:name`) that stand for this repository.
    pub policies: Vec<String>,
    pub pin: Pin,
    pub markers: Markers,
    /// Rename: references to `repository` move to this one (`registry/path`, as it should be written).
    pub new_name: Option<String>,
    /// Compare-and-set: every reference must hold this tag (or already the new one).
    pub expect_tag: Option<String>,
    pub expect_digest: Option<String>,
}

impl Target {
    pub fn new(repository: &str, tag: Option<String>, digest: Option<String>) -> Self {
        let repository = Reference::parse(repository)
            .map(|r| r.repository_ref())
            .unwrap_or_else(|_| repository.to_string());
        Self {
            name: familiar(&repository),
            repository,
            tag,
            digest,
            ..Self::default()
        }
    }
}

/// `docker.io/library/nginx` → `nginx`, `docker.io/org/x` → `org/x`, anything else as it is.
pub fn familiar(repository: &str) -> String {
    match repository.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest).to_string(),
        None => repository.to_string(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub file: String,
    pub path: String,
    pub line: usize,
    pub old: String,
    pub new: String,
    #[serde(skip)]
    pub start: usize,
    #[serde(skip)]
    pub end: usize,
    #[serde(skip)]
    pub replacement: String,
    #[serde(skip)]
    doc: usize,
    #[serde(skip)]
    segs: Vec<Seg>,
}

/// A place that references an image (the one being bumped, another one, or one flowship cannot read).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Found {
    pub file: String,
    pub line: usize,
    pub path: String,
    pub value: String,
    /// Why it was left alone (a reference that does not parse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One file planned.
#[derive(Debug, Default)]
pub struct FileScan {
    pub changes: Vec<Change>,
    /// References to the target repository (whether or not they change).
    pub found: Vec<Found>,
    /// References that name the target repository but cannot be read (placeholders, malformed digests).
    pub skipped: Vec<Found>,
    /// References to other repositories.
    pub others: Vec<Found>,
}

pub fn path_string(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn same_repo(value: &str, repository: &str) -> bool {
    Reference::parse(value).is_ok_and(|r| r.repository_ref() == repository)
}

/// Split `repo[:tag][@digest]` as written (keeping the registry spelling the file uses).
fn split_ref(value: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match value.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (value, None),
    };
    match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..]), digest),
        _ => (rest, None, digest),
    }
}

/// The repository a value names even when its tag or digest does not parse (`repo:{GENERATED_TAG}`,
/// `repo@sha256:short`): `None` when not even the repository part reads as one.
fn loose_repository(value: &str) -> Option<String> {
    let (repo, _, _) = split_ref(value.split('{').next().unwrap_or(value));
    let repo = repo.trim_end_matches([':', '@', '$']);
    Reference::parse(repo).ok().map(|r| r.repository_ref())
}

pub(crate) struct Planner<'a> {
    file: &'a str,
    text: &'a str,
    scanned: &'a Scanned,
    nodes: Vec<Node>,
    /// Node indexes by `(document, parent path)`: siblings in O(1).
    by_parent: HashMap<(usize, Vec<Seg>), Vec<usize>>,
    target: &'a Target,
    /// Set while a Flux marker is planned: the policy decides pinning there, not the value's form.
    pin: Pin,
    out: FileScan,
}

impl<'a> Planner<'a> {
    fn new(file: &'a str, text: &'a str, scanned: &'a Scanned, target: &'a Target) -> Self {
        let nodes = resolve::nodes(scanned);
        let mut by_parent: HashMap<(usize, Vec<Seg>), Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            if let Some((_, parent)) = n.s.path.split_last() {
                by_parent
                    .entry((n.s.doc, parent.to_vec()))
                    .or_default()
                    .push(i);
            }
        }
        Self {
            file,
            text,
            scanned,
            nodes,
            by_parent,
            target,
            pin: target.pin,
            out: FileScan::default(),
        }
    }

    /// The scalar at `parent` + `rel` in `n`'s document.
    fn at(&self, doc: usize, parent: &[Seg], rel: &[&str]) -> Option<Node> {
        let mut path = parent.to_vec();
        let (last, mid) = rel.split_last()?;
        path.extend(mid.iter().map(|k| Seg::Key((*k).into())));
        self.by_parent.get(&(doc, path)).and_then(|ix| {
            ix.iter()
                .map(|i| &self.nodes[*i])
                .find(|x| x.s.path.last() == Some(&Seg::Key((*last).into())))
                .cloned()
        })
    }

    fn sibling(&self, n: &Node, key: &str) -> Option<Node> {
        self.at(n.s.doc, parent_of(n), &[key])
    }

    fn found(&mut self, n: &Node, path: String, value: String) {
        self.out.found.push(Found {
            file: self.file.into(),
            line: n.s.line,
            path,
            value,
            reason: None,
        });
    }

    fn other(&mut self, n: &Node, value: &str) {
        if self.out.others.len() < 64 {
            self.out.others.push(Found {
                file: self.file.into(),
                line: n.s.line,
                path: path_string(&n.s.path),
                value: value.into(),
                reason: None,
            });
        }
    }

    fn skip(&mut self, n: &Node, value: &str, reason: String) {
        self.out.skipped.push(Found {
            file: self.file.into(),
            line: n.s.line,
            path: path_string(&n.s.path),
            value: value.into(),
            reason: Some(reason),
        });
    }

    /// Is `value` a reference to the target? Records it as another repository's, or as unreadable.
    fn matches(&mut self, n: &Node, value: &str) -> bool {
        match Reference::parse(value) {
            Ok(r) if r.repository_ref() == self.target.repository => true,
            Ok(_) => {
                self.other(n, value);
                false
            }
            Err(e) => {
                if loose_repository(value).as_deref() == Some(self.target.repository.as_str()) {
                    self.skip(
                        n,
                        value,
                        format!("not an image reference flowship can read: {e}"),
                    );
                }
                false
            }
        }
    }

    /// Set `n` to `new` (in its own quote style). Through an alias only when the anchor itself is being set
    /// to the same value by another change of this plan.
    fn set(&mut self, n: &Node, new: String) -> Result<(), EditError> {
        let s = &n.s;
        if s.value == new {
            return Ok(());
        }
        if let Some(c) = self.out.changes.iter().find(|c| c.start == s.start)
            && (n.via.is_none() || c.new == new)
        {
            return Ok(());
        }
        if let Some(via) = &n.via {
            return Err(EditError::Alias {
                file: self.file.into(),
                line: via.line,
                path: path_string(&s.path),
                alias: via.alias.clone(),
                anchor_line: via.anchor_line,
                how: if via.merge {
                    "the merge key (`<<`) of the alias"
                } else {
                    "the alias"
                },
            });
        }
        let Some(replacement) = yaml::render(s.style, &new) else {
            return Err(EditError::Block {
                file: self.file.into(),
                line: s.line,
                path: path_string(&s.path),
            });
        };
        self.out.changes.push(Change {
            file: self.file.into(),
            path: path_string(&s.path),
            line: s.line,
            old: s.value.clone(),
            new,
            start: s.start,
            end: s.end,
            replacement,
            doc: s.doc,
            segs: s.path.clone(),
        });
        Ok(())
    }
}

fn parent_of(n: &Node) -> &[Seg] {
    &n.s.path[..n.s.path.len().saturating_sub(1)]
}

fn key_of(n: &Node) -> &str {
    match n.s.path.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "",
    }
}

/// The changes that set `target` in one file's text, verified by re-parsing the result.
pub fn plan(file: &str, text: &str, target: &Target) -> Result<FileScan, EditError> {
    planned(file, text, target, |p| {
        let only_markers = target.markers == Markers::Only && marker::carries_markers(p.text);
        for i in 0..p.nodes.len() {
            let n = p.nodes[i].clone();
            // A marker first: where a value is both marked and a reference, Flux's semantics decide.
            if n.via.is_none() && (only_markers || !target.policies.is_empty()) {
                p.marker(&n)?;
            }
            if !only_markers {
                p.discover(&n)?;
            }
        }
        Ok(())
    })
}

/// Scan `text`, let `find` plan changes on it, and verify them by re-parsing the result.
fn planned(
    file: &str,
    text: &str,
    target: &Target,
    find: impl for<'p> FnOnce(&mut Planner<'p>) -> Result<(), EditError>,
) -> Result<FileScan, EditError> {
    let scanned = yaml::scan(text).map_err(|source| EditError::Yaml {
        file: file.into(),
        source,
    })?;
    let out = {
        let mut p = Planner::new(file, text, &scanned, target);
        find(&mut p)?;
        p.out
    };
    verify(file, text, &scanned, &out.changes)?;
    Ok(out)
}

/// The changes that set `target` at an explicit YAML path (`spec.values.worker.image.prefectTag`) in every
/// document that has it. The field decides what is written: `*tag`/`*Tag`/`version` a tag (with `@digest`
/// when the value is pinned), `digest` a digest, anything else an image reference whose tag and digest are
/// replaced. A path that only exists through an alias or a merge key is refused, naming the alias.
pub fn plan_path(
    file: &str,
    text: &str,
    path: &str,
    target: &Target,
) -> Result<FileScan, EditError> {
    planned(file, text, target, |p| {
        let hits: Vec<Node> = p
            .nodes
            .iter()
            .filter(|n| path_string(&n.s.path) == path)
            .cloned()
            .collect();
        if hits.is_empty() {
            return Err(EditError::NoSuchPath {
                file: file.into(),
                path: path.into(),
            });
        }
        for n in hits {
            let key = key_of(&n).to_string();
            p.found(&n, path.into(), n.s.value.clone());
            if key == "digest" {
                if let Some(d) = &target.digest {
                    p.set(&n, d.clone())?;
                }
            } else if key.ends_with("tag") || key.ends_with("Tag") || key == "version" {
                p.tag_field(&n, None)?;
            } else if same_repo(&n.s.value, &target.repository) {
                p.image_string(&n, "", None)?;
            } else {
                return Err(EditError::OtherRepository {
                    file: file.into(),
                    line: n.s.line,
                    path: path.into(),
                    value: n.s.value.clone(),
                    repository: target.repository.clone(),
                });
            }
        }
        Ok(())
    })
}

/// Apply changes (non-overlapping byte ranges) to the text.
pub fn apply(text: &str, changes: &[Change]) -> String {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.start));
    let mut out = text.to_string();
    for c in sorted {
        out.replace_range(c.start..c.end, &c.replacement);
    }
    out
}

/// Re-parse the edited text: every scalar must read as before, except the changed ones, which must read as
/// their new value. Anything else means the splice broke the document.
fn verify(file: &str, text: &str, before: &Scanned, changes: &[Change]) -> Result<(), EditError> {
    if changes.is_empty() {
        return Ok(());
    }
    let fail = |detail: String| EditError::Verify {
        file: file.into(),
        detail,
    };
    let after = yaml::scan(&apply(text, changes))
        .map_err(|e| fail(format!("result does not parse: {e}")))?;
    if after.scalars.len() != before.scalars.len() || after.documents != before.documents {
        return Err(fail("the document structure changed".into()));
    }
    for (b, a) in before.scalars.iter().zip(&after.scalars) {
        if a.doc != b.doc || a.path != b.path {
            return Err(fail(format!("`{}` moved", path_string(&b.path))));
        }
        let want = changes
            .iter()
            .find(|c| c.doc == b.doc && c.segs == b.path)
            .map(|c| c.new.as_str())
            .unwrap_or(&b.value);
        // An anchored value's aliases are separate events with their own paths: they are not scalars here.
        if a.value != want {
            return Err(fail(format!(
                "`{}` reads `{}`, expected `{want}`",
                path_string(&b.path),
                a.value
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shapes;
