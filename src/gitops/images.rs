//! Where an image lives in a manifest, and the byte edits that move it to a new tag and/or digest.
//!
//! Shapes: `image: repo:tag[@digest]` strings (Deployment/StatefulSet/DaemonSet/Job/CronJob containers and
//! initContainers, HelmRelease values, Prefect `job_variables.image` and work-pool templates, in YAML or
//! JSON); `repository` (+ optional `registry`) blocks with `tag`/`prefectTag`/`digest` siblings (Helm charts,
//! the Prefect worker chart); Kustomize `images:` items (`name`/`newName`/`newTag`/`digest`, also under a
//! HelmRelease's `postRenderers`); and Flux setter markers `# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}`.
//! Values inside block scalars are never touched: they are not scalars of this document.

use super::yaml::{self, Scalar, Scanned, Seg, Style, YamlError};
use crate::registry::Reference;
use serde::Serialize;
use std::collections::BTreeMap;

/// What to set.
#[derive(Debug, Clone)]
pub struct Target {
    /// `registry/repository`, normalised (see `Reference::repository_ref`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// Flux policies (`ns:name`) that stand for this repository.
    pub policies: Vec<String>,
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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("{file}: no scalar value at `{path}`")]
    NoSuchPath { file: String, path: String },
    #[error(
        "{file}:{line}: `{path}` holds `{value}`, an image of another repository than {repository}"
    )]
    OtherRepository {
        file: String,
        line: usize,
        path: String,
        value: String,
        repository: String,
    },
    #[error("{file}: {source}")]
    Yaml { file: String, source: YamlError },
    #[error("{file}:{line}: `{path}` is an alias; refusing to edit through it")]
    Alias {
        file: String,
        line: usize,
        path: String,
    },
    #[error(
        "{file}:{line}: `{path}` takes its `{field}` from a merge key (`<<`); refusing to edit the shared anchor"
    )]
    Merge {
        file: String,
        line: usize,
        path: String,
        field: String,
    },
    #[error("{file}:{line}: `{path}` is a block scalar; refusing to edit inside it")]
    Block {
        file: String,
        line: usize,
        path: String,
    },
    #[error(
        "{file}:{line}: `{path}` is pinned to digest {digest}; a new tag alone would keep running the old image"
    )]
    DigestPinned {
        file: String,
        line: usize,
        path: String,
        digest: String,
    },
    #[error("{file}:{line}: `{path}` has no `{field}` field to set")]
    MissingField {
        file: String,
        line: usize,
        path: String,
        field: String,
    },
    #[error(
        "{file}: the edit did not verify: {detail} (this is a bug in flowship; nothing was written)"
    )]
    Verify { file: String, detail: String },
}

impl EditError {
    pub fn hint(&self) -> Option<String> {
        match self {
            EditError::DigestPinned { .. } => {
                Some("pass --digest as well (or a `repo:tag@sha256:...` reference)".into())
            }
            EditError::MissingField { field, .. } => Some(format!(
                "add `{field}:` once by hand; flowship keeps it current after that"
            )),
            EditError::Alias { .. } | EditError::Merge { .. } => {
                Some("edit the anchor's value by hand, or give the field its own value".into())
            }
            _ => None,
        }
    }
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

struct Planner<'a> {
    file: &'a str,
    text: &'a str,
    scanned: &'a Scanned,
    target: &'a Target,
    changes: Vec<Change>,
}

impl Planner<'_> {
    fn sibling(&self, s: &Scalar, key: &str) -> Option<&Scalar> {
        let parent = &s.path[..s.path.len() - 1];
        self.scanned.scalars.iter().find(|x| {
            x.doc == s.doc
                && x.path.len() == s.path.len()
                && &x.path[..x.path.len() - 1] == parent
                && x.path.last() == Some(&Seg::Key(key.into()))
        })
    }

    fn parent_merged(&self, s: &Scalar) -> bool {
        let parent = &s.path[..s.path.len() - 1];
        self.scanned
            .merges
            .iter()
            .any(|(d, p, _)| *d == s.doc && p == parent)
    }

    fn refuse_alias(&self, s: &Scalar, key: &str) -> Result<(), EditError> {
        let mut p = s.path[..s.path.len() - 1].to_vec();
        p.push(Seg::Key(key.into()));
        if let Some((_, _, line)) = self
            .scanned
            .aliases
            .iter()
            .find(|(d, ap, _)| *d == s.doc && *ap == p)
        {
            return Err(EditError::Alias {
                file: self.file.into(),
                line: *line,
                path: path_string(&p),
            });
        }
        Ok(())
    }

    fn set(&mut self, s: &Scalar, new: String) -> Result<(), EditError> {
        if s.value == new || self.changes.iter().any(|c| c.start == s.start) {
            return Ok(());
        }
        let Some(replacement) = yaml::render(s.style, &new) else {
            return Err(EditError::Block {
                file: self.file.into(),
                line: s.line,
                path: path_string(&s.path),
            });
        };
        self.changes.push(Change {
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

    /// `tag` or `tag@digest` in one field (bjw-s app-template, `prefectTag: "3.1.0@sha256:..."`).
    fn tag_field_value(
        &self,
        s: &Scalar,
        digest_field: Option<&Scalar>,
    ) -> Result<Option<String>, EditError> {
        let (old_tag, old_digest) = match s.value.split_once('@') {
            Some((t, d)) => (t.to_string(), Some(d.to_string())),
            None => (s.value.clone(), None),
        };
        let tag = self.target.tag.clone().unwrap_or(old_tag);
        let digest = match (&self.target.digest, old_digest) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(d)) => return Err(self.pinned(s, &d)),
            (None, None) => None,
        };
        if self.target.digest.is_none()
            && let Some(d) = digest_field.filter(|d| !d.value.is_empty())
        {
            return Err(self.pinned(d, &d.value));
        }
        // A separate digest field carries the digest; the tag field then stays a plain tag.
        let combined = match (digest, digest_field) {
            (Some(d), None) => format!("{tag}@{d}"),
            _ => tag,
        };
        Ok(Some(combined))
    }

    fn pinned(&self, s: &Scalar, digest: &str) -> EditError {
        EditError::DigestPinned {
            file: self.file.into(),
            line: s.line,
            path: path_string(&s.path),
            digest: digest.into(),
        }
    }

    fn image_string(&mut self, s: &Scalar) -> Result<(), EditError> {
        let (repo, old_tag, old_digest) = split_ref(&s.value);
        let tag = self.target.tag.as_deref().or(old_tag);
        let digest = match (&self.target.digest, old_digest) {
            (Some(d), _) => Some(d.as_str()),
            (None, Some(d)) => return Err(self.pinned(s, d)),
            (None, None) => None,
        };
        let mut new = repo.to_string();
        if let Some(t) = tag {
            new.push(':');
            new.push_str(t);
        }
        if let Some(d) = digest {
            new.push('@');
            new.push_str(d);
        }
        self.set(s, new)
    }

    fn repository_block(&mut self, repo: &Scalar) -> Result<(), EditError> {
        let full = match self.sibling(repo, "registry") {
            Some(reg) if !reg.value.is_empty() => format!("{}/{}", reg.value, repo.value),
            _ => repo.value.clone(),
        };
        if !same_repo(&full, &self.target.repository) {
            return Ok(());
        }
        let digest_field = self.sibling(repo, "digest").cloned();
        let tag_field = self
            .sibling(repo, "tag")
            .or_else(|| self.sibling(repo, "prefectTag"))
            .cloned();
        if self.target.tag.is_some() {
            for k in ["tag", "prefectTag"] {
                self.refuse_alias(repo, k)?;
            }
            match &tag_field {
                Some(t) => {
                    if let Some(v) = self.tag_field_value(t, digest_field.as_ref())? {
                        self.set(t, v)?;
                    }
                }
                None if self.parent_merged(repo) => {
                    return Err(EditError::Merge {
                        file: self.file.into(),
                        line: repo.line,
                        path: path_string(&repo.path[..repo.path.len() - 1]),
                        field: "tag".into(),
                    });
                }
                None => {
                    return Err(EditError::MissingField {
                        file: self.file.into(),
                        line: repo.line,
                        path: path_string(&repo.path[..repo.path.len() - 1]),
                        field: "tag".into(),
                    });
                }
            }
        }
        if let Some(d) = &self.target.digest {
            self.refuse_alias(repo, "digest")?;
            match (&digest_field, &tag_field) {
                (Some(df), _) => self.set(df, d.clone())?,
                (None, Some(t)) if self.target.tag.is_none() => {
                    let (tag, _) = t.value.split_once('@').unwrap_or((t.value.as_str(), ""));
                    self.set(t, format!("{tag}@{d}"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn kustomize_item(&mut self, name: &Scalar) -> Result<(), EditError> {
        let new_name = self.sibling(name, "newName").cloned();
        let effective = new_name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_else(|| name.value.clone());
        if !same_repo(&effective, &self.target.repository) {
            return Ok(());
        }
        let item_path = path_string(&name.path[..name.path.len() - 1]);
        if let Some(t) = &self.target.tag {
            self.refuse_alias(name, "newTag")?;
            match self.sibling(name, "newTag").cloned() {
                Some(nt) => self.set(&nt, t.clone())?,
                None => {
                    return Err(EditError::MissingField {
                        file: self.file.into(),
                        line: name.line,
                        path: item_path,
                        field: "newTag".into(),
                    });
                }
            }
        }
        let digest = self.sibling(name, "digest").cloned();
        match (&self.target.digest, digest) {
            (Some(d), Some(df)) => self.set(&df, d.clone())?,
            (Some(_), None) => {
                return Err(EditError::MissingField {
                    file: self.file.into(),
                    line: name.line,
                    path: item_path,
                    field: "digest".into(),
                });
            }
            (None, Some(df)) if !df.value.is_empty() => {
                return Err(self.pinned(&df, &df.value.clone()));
            }
            _ => {}
        }
        Ok(())
    }

    /// `# {"$imagepolicy": "ns:name[:field]"}` after the scalar on its line.
    fn marker(&mut self, s: &Scalar) -> Result<(), EditError> {
        let rest = &self.text[s.end..];
        let line_rest = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let Some(hash) = line_rest.find('#') else {
            return Ok(());
        };
        let comment = line_rest[hash..].trim_start_matches('#').trim();
        let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(comment) else {
            return Ok(());
        };
        let Some(policy) = map.get("$imagepolicy") else {
            return Ok(());
        };
        let mut parts = policy.splitn(3, ':');
        let (Some(ns), Some(name)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        if !self
            .target
            .policies
            .iter()
            .any(|p| *p == format!("{ns}:{name}"))
        {
            return Ok(());
        }
        match parts.next() {
            None => self.image_string(s),
            Some("tag") => match &self.target.tag {
                Some(t) => self.set(s, t.clone()),
                None => Ok(()),
            },
            Some("digest") => match &self.target.digest {
                Some(d) => self.set(s, d.clone()),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// The changes that set `target` in one file's text, verified by re-parsing the result.
pub fn plan(file: &str, text: &str, target: &Target) -> Result<Vec<Change>, EditError> {
    planned(file, text, target, |p| {
        let scanned = p.scanned;
        for s in &scanned.scalars {
            let key = match s.path.last() {
                Some(Seg::Key(k)) => k.as_str(),
                _ => "",
            };
            let in_images_list = s.path.len() >= 3
                && matches!(s.path[s.path.len() - 2], Seg::Index(_))
                && s.path[s.path.len() - 3] == Seg::Key("images".into());
            if in_images_list && key == "name" {
                p.kustomize_item(s)?;
            } else if (key == "image" || key.ends_with("Image"))
                && s.style != Style::Block
                && same_repo(&s.value, &p.target.repository)
            {
                p.image_string(s)?;
            } else if key == "repository" {
                p.repository_block(s)?;
            }
            if !p.target.policies.is_empty() {
                p.marker(s)?;
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
) -> Result<Vec<Change>, EditError> {
    let scanned = yaml::scan(text).map_err(|source| EditError::Yaml {
        file: file.into(),
        source,
    })?;
    let changes = {
        let mut p = Planner {
            file,
            text,
            scanned: &scanned,
            target,
            changes: Vec::new(),
        };
        find(&mut p)?;
        p.changes
    };
    verify(file, text, &scanned, &changes)?;
    Ok(changes)
}

/// The changes that set `target` at an explicit YAML path (`spec.values.worker.image.prefectTag`) in every
/// document that has it. The field decides what is written: `*tag`/`*Tag` a tag (with `@digest` when one is
/// given), `digest` a digest, anything else an image reference whose tag and digest are replaced.
pub fn plan_path(
    file: &str,
    text: &str,
    path: &str,
    target: &Target,
) -> Result<Vec<Change>, EditError> {
    planned(file, text, target, |p| {
        let scanned = p.scanned;
        if let Some((_, ap, line)) = scanned
            .aliases
            .iter()
            .find(|(_, ap, _)| path_string(ap) == path)
        {
            return Err(EditError::Alias {
                file: file.into(),
                line: *line,
                path: path_string(ap),
            });
        }
        let hits: Vec<&Scalar> = scanned
            .scalars
            .iter()
            .filter(|s| path_string(&s.path) == path)
            .collect();
        if hits.is_empty() {
            return Err(EditError::NoSuchPath {
                file: file.into(),
                path: path.into(),
            });
        }
        for s in hits {
            let key = match s.path.last() {
                Some(Seg::Key(k)) => k.as_str(),
                _ => "",
            };
            if key == "digest" {
                if let Some(d) = &target.digest {
                    p.set(s, d.clone())?;
                }
            } else if key.ends_with("tag") || key.ends_with("Tag") {
                if let Some(v) = p.tag_field_value(s, None)? {
                    p.set(s, v)?;
                }
            } else if same_repo(&s.value, &target.repository) {
                p.image_string(s)?;
            } else {
                return Err(EditError::OtherRepository {
                    file: file.into(),
                    line: s.line,
                    path: path.into(),
                    value: s.value.clone(),
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
