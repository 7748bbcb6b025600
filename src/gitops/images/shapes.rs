//! The manifest shapes that reference an image, and what each one's edit is. Every shape follows the same
//! rules: a reference keeps its form (`tag@digest` in, `tag@digest` out; tag-only stays tag-only unless
//! `Pin::Always` or the bump gives a digest alone), a pinned reference never gets a new tag without a new
//! digest, and a compare-and-set (`expect_tag`/`expect_digest`) refuses a reference that holds anything else.

use super::resolve::Node;
use super::{EditError, Pin, Planner, key_of, parent_of, path_string, split_ref};
use crate::gitops::yaml::{Seg, Style};
use crate::registry::{Reference, is_digest, is_tag};

/// Sibling fields that carry a repository block's tag, in order of preference.
const TAG_FIELDS: [&str; 4] = ["tag", "prefectTag", "version", "imageTag"];

/// `image`, `initImage`, `inline_image`, `sidecarImage`: any key that ends in "image", in any case.
fn is_image_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("image")
}

impl Planner<'_> {
    /// Look at one scalar: if it is (the anchor of) a shape that references an image, plan its edit.
    pub(super) fn discover(&mut self, n: &Node) -> Result<(), EditError> {
        if n.s.style == Style::Block {
            return Ok(());
        }
        let key = key_of(n);
        let path = &n.s.path;
        let len = path.len();
        let in_list = |name: &str| {
            len >= 2
                && matches!(path[len - 1], Seg::Index(_))
                && path[len - 2] == Seg::Key(name.into())
        };
        let item_in = |name: &str| {
            len >= 3
                && matches!(path[len - 2], Seg::Index(_))
                && path[len - 3] == Seg::Key(name.into())
        };
        if key == "name" && item_in("images") {
            self.kustomize_item(n)
        } else if key == "name" && item_in("parameters") {
            self.helm_parameter(n)
        } else if in_list("images") {
            self.kustomize_string(n)
        } else if is_image_key(key)
            || (key == "reference" && len >= 2 && path[len - 2] == Seg::Key("image".into()))
        {
            self.image_key(n)
        } else if key == "repository" {
            self.repository_block(n)
        } else if key == "url" && n.s.value.starts_with("oci://") {
            self.oci_repository(n)
        } else {
            Ok(())
        }
    }

    /// The digest a reference gets: the new one where it was pinned (or must be), else none or the old one.
    fn new_digest(
        &self,
        n: &Node,
        pinned: Option<&str>,
        tag_changes: bool,
    ) -> Result<Option<String>, EditError> {
        let t = self.target;
        match (&t.digest, pinned) {
            (Some(d), Some(_)) => Ok(Some(d.clone())),
            (Some(d), None) if self.pin == Pin::Always || t.tag.is_none() => Ok(Some(d.clone())),
            (Some(_), None) => Ok(None),
            (None, Some(old)) if tag_changes && !old.is_empty() => Err(EditError::DigestPinned {
                file: self.file.into(),
                line: n.s.line,
                path: path_string(&n.s.path),
                digest: old.into(),
            }),
            (None, old) => Ok(old.filter(|d| !d.is_empty()).map(str::to_string)),
        }
    }

    /// `--expect-tag`/`--expect-digest`: the reference must hold the expected value, or already the new one.
    pub(super) fn expect(
        &self,
        n: &Node,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<(), EditError> {
        let t = self.target;
        let checks = [
            ("tag", &t.expect_tag, tag, &t.tag),
            ("digest", &t.expect_digest, digest, &t.digest),
        ];
        for (what, expected, found, new) in checks {
            let Some(expected) = expected else { continue };
            let found = found.unwrap_or("");
            if found != expected && Some(found) != new.as_deref() {
                return Err(EditError::Unexpected {
                    file: self.file.into(),
                    line: n.s.line,
                    path: path_string(&n.s.path),
                    what,
                    found: if found.is_empty() {
                        "nothing".into()
                    } else {
                        found.into()
                    },
                    expected: expected.clone(),
                });
            }
        }
        Ok(())
    }

    /// A tag or digest the reference holds that no registry would take (`{GENERATED_TAG}`, a short digest):
    /// reported and left as it is, since a template step or a person owns it.
    fn unreadable(&mut self, n: &Node, tag: Option<&str>, digest: Option<&str>) -> bool {
        let bad = match (tag, digest) {
            (Some(t), _) if !t.is_empty() && !is_tag(t) => Some(format!("`{t}` is not a tag")),
            (_, Some(d)) if !d.is_empty() && !is_digest(d) => {
                Some(format!("`{d}` is not a digest"))
            }
            _ => None,
        };
        match bad {
            Some(why) => {
                let value = n.s.value.clone();
                self.skip(n, &value, why);
                true
            }
            None => false,
        }
    }

    /// `image: repo:tag@digest` (and `prefix` + that, for kustomize's `name=repo:tag` strings). `repo` replaces
    /// the file's repository spelling (a rename, or a Flux whole-image setter).
    pub(super) fn image_string(
        &mut self,
        n: &Node,
        prefix: &str,
        repo: Option<&str>,
    ) -> Result<(), EditError> {
        let value = n.s.value[prefix.len()..].to_string();
        let (old_repo, old_tag, old_digest) = split_ref(&value);
        self.expect(n, old_tag, old_digest)?;
        let tag = self.target.tag.as_deref().or(old_tag);
        let digest = self.new_digest(n, old_digest, tag != old_tag)?;
        let mut new = format!(
            "{prefix}{}",
            repo.or(self.target.new_name.as_deref()).unwrap_or(old_repo)
        );
        if let Some(t) = tag {
            new.push(':');
            new.push_str(t);
        }
        if let Some(d) = digest {
            new.push('@');
            new.push_str(&d);
        }
        self.set(n, new)
    }

    /// A field that holds a tag, or `tag@digest` (bjw-s app-template, `prefectTag: "3.1.0@sha256:..."`,
    /// Renovate's `newTag: 1.2@sha256:...`). With a separate digest field, that field carries the digest.
    pub(super) fn tag_field(
        &mut self,
        n: &Node,
        digest_field: Option<&Node>,
    ) -> Result<(), EditError> {
        let (old_tag, old_digest) = match n.s.value.split_once('@') {
            Some((t, d)) => (t.to_string(), Some(d.to_string())),
            None => (n.s.value.clone(), None),
        };
        let field_digest = digest_field.map(|d| d.s.value.clone());
        let current_digest = old_digest.clone().or(field_digest.clone());
        if self.unreadable(n, Some(&old_tag), current_digest.as_deref()) {
            return Ok(());
        }
        self.expect(n, Some(&old_tag), current_digest.as_deref())?;
        let tag = self.target.tag.clone().unwrap_or_else(|| old_tag.clone());
        let changes = tag != old_tag;
        match digest_field {
            Some(df) => {
                // A digest field the file made room for (even empty) is where the digest goes.
                let digest = match &self.target.digest {
                    Some(d) => Some(d.clone()),
                    None => self.new_digest(df, field_digest.as_deref(), changes)?,
                };
                let tag_value = match (&old_digest, &digest) {
                    (Some(_), Some(d)) => format!("{tag}@{d}"),
                    (Some(old), None) => format!("{tag}@{old}"),
                    (None, _) => tag,
                };
                self.set(n, tag_value)?;
                if let Some(d) = digest {
                    self.set(df, d)?;
                }
                Ok(())
            }
            None => {
                let new = match self.new_digest(n, old_digest.as_deref(), changes)? {
                    Some(d) => format!("{tag}@{d}"),
                    None => tag,
                };
                self.set(n, new)
            }
        }
    }

    /// An `*image` key: a whole reference, or a repository whose tag sits beside it (`imageTag`, `tag`).
    fn image_key(&mut self, n: &Node) -> Result<(), EditError> {
        let value = n.s.value.clone();
        if !self.matches(n, &value) {
            return Ok(());
        }
        self.found(n, path_string(&n.s.path), value.clone());
        let (_, tag, digest) = split_ref(&value);
        if tag.is_none() && digest.is_none() {
            for k in ["imageTag", "tag"] {
                if let Some(t) = self.sibling(n, k) {
                    self.rename(n, None)?;
                    let d = self
                        .sibling(n, "imageDigest")
                        .or_else(|| self.sibling(n, "digest"));
                    return self.tag_field(&t, d.as_ref());
                }
            }
        }
        self.image_string(n, "", None)
    }

    /// Argo CD's `kustomize.images` strings: `repo:tag`, `repo@digest`, `name=new:tag`.
    fn kustomize_string(&mut self, n: &Node) -> Result<(), EditError> {
        let value = n.s.value.clone();
        let (prefix, rest) = match value.split_once('=') {
            Some((name, rest)) => (format!("{name}="), rest.to_string()),
            None => (String::new(), value.clone()),
        };
        let by_name = !prefix.is_empty()
            && super::same_repo(prefix.trim_end_matches('='), &self.target.repository);
        if !by_name && !self.matches(n, &rest) {
            return Ok(());
        }
        self.found(n, path_string(&n.s.path), value);
        self.image_string(n, &prefix, None)
    }

    /// A Helm values block: `repository` (+ `registry`) with a tag field and/or `digest` beside it.
    fn repository_block(&mut self, repo: &Node) -> Result<(), EditError> {
        let registry = self
            .sibling(repo, "registry")
            .filter(|r| !r.s.value.is_empty());
        let full = match &registry {
            Some(reg) => format!("{}/{}", reg.s.value, repo.s.value),
            None => repo.s.value.clone(),
        };
        if !self.matches(repo, &full) {
            return Ok(());
        }
        let block = path_string(parent_of(repo));
        let digest_field = self.sibling(repo, "digest");
        let tag_field = TAG_FIELDS.iter().find_map(|k| self.sibling(repo, k));
        let shown = match &tag_field {
            Some(t) => format!("{full}:{}", t.s.value),
            None => full.clone(),
        };
        self.found(repo, block.clone(), shown);
        if tag_field.is_none() && self.is_shared_template(repo) {
            // An anchored block without a tag is a template: the blocks that merge it carry the tags.
            return Ok(());
        }
        if let Some(new) = self.target.new_name.clone() {
            match (&registry, Reference::parse(&new)) {
                (Some(reg), Ok(r)) => {
                    self.set(reg, r.registry.clone())?;
                    self.set(repo, r.repository.clone())?;
                }
                _ => self.set(repo, new)?,
            }
        }
        match (&tag_field, &digest_field) {
            (Some(t), d) => self.tag_field(t, d.as_ref()),
            (None, Some(d)) => self.digest_only(d, &block, "tag"),
            (None, None) => Err(self.missing(repo, &block, "tag")),
        }
    }

    /// A reference pinned by its digest field alone (`name: postgres` + `digest:`): it keeps that form, so it
    /// takes a new digest; a new tag alone cannot move it (the image is the digest's), nor can it be added.
    fn digest_only(&mut self, d: &Node, block: &str, tag_field: &str) -> Result<(), EditError> {
        let value = d.s.value.clone();
        if self.unreadable(d, None, Some(&value)) {
            return Ok(());
        }
        self.expect(d, None, Some(&value))?;
        match (&self.target.digest, &self.target.tag) {
            (Some(new), _) => self.set(d, new.clone()),
            (None, Some(_)) if !value.is_empty() => Err(EditError::DigestPinned {
                file: self.file.into(),
                line: d.s.line,
                path: path_string(&d.s.path),
                digest: value,
            }),
            (None, Some(_)) => Err(self.missing(d, block, tag_field)),
            (None, None) => Ok(()),
        }
    }

    /// Is `n`'s mapping an anchor that some alias or merge key uses?
    fn is_shared_template(&self, n: &Node) -> bool {
        let parent = parent_of(n);
        self.scanned.aliases.iter().any(|a| {
            a.anchor
                .and_then(|id| self.scanned.anchors.get(&id))
                .is_some_and(|an| an.doc == n.s.doc && an.path == parent)
        })
    }

    fn missing(&self, n: &Node, block: &str, field: &str) -> EditError {
        EditError::MissingField {
            file: self.file.into(),
            line: n.s.line,
            path: block.into(),
            field: field.into(),
        }
    }

    /// `--new-name`: the field that holds the repository takes the new one.
    fn rename(&mut self, n: &Node, prefix: Option<&str>) -> Result<(), EditError> {
        let Some(new) = self.target.new_name.clone() else {
            return Ok(());
        };
        let (_, tag, digest) = split_ref(&n.s.value);
        let mut v = format!("{}{new}", prefix.unwrap_or(""));
        if let Some(t) = tag {
            v.push_str(&format!(":{t}"));
        }
        if let Some(d) = digest {
            v.push_str(&format!("@{d}"));
        }
        self.set(n, v)
    }

    /// A Kustomize `images:` item: `name` (+ `newName`) with `newTag` and/or `digest`.
    fn kustomize_item(&mut self, name: &Node) -> Result<(), EditError> {
        let new_name = self.sibling(name, "newName");
        if let Some(nn) = &new_name
            && self.sibling(name, "newTag").is_none()
            && self.sibling(name, "digest").is_none()
        {
            // `newName: repo:tag@digest` (kustomize takes it, Renovate keeps it current): the whole string is
            // the reference, edited as an image string.
            let (repo, tag, digest) = split_ref(&nn.s.value);
            if tag.is_some() || digest.is_some() {
                let repo = repo.to_string();
                if !self.matches(nn, &repo) {
                    return Ok(());
                }
                self.found(nn, path_string(parent_of(name)), nn.s.value.clone());
                return self.image_string(nn, "", None);
            }
        }
        let effective = new_name
            .as_ref()
            .map(|n| n.s.value.clone())
            .unwrap_or_else(|| name.s.value.clone());
        if !self.matches(name, &effective) {
            return Ok(());
        }
        let item = path_string(parent_of(name));
        let new_tag = self.sibling(name, "newTag");
        let digest = self.sibling(name, "digest");
        let shown = match &new_tag {
            Some(t) => format!("{effective}:{}", t.s.value),
            None => effective.clone(),
        };
        self.found(name, item.clone(), shown);
        if let Some(new) = self.target.new_name.clone() {
            match &new_name {
                Some(nn) => self.set(nn, new)?,
                None => return Err(self.missing(name, &item, "newName")),
            }
        }
        match (&new_tag, &digest) {
            (Some(t), d) => self.tag_field(t, d.as_ref()),
            (None, Some(d)) => self.digest_only(d, &item, "newTag"),
            (None, None) if self.target.tag.is_some() => Err(self.missing(name, &item, "newTag")),
            (None, None) => Err(self.missing(name, &item, "digest")),
        }
    }

    /// Argo CD's `helm.parameters`: `{name: image.name, value: repo}` beside `{name: image.tag, value: 1.2}`.
    fn helm_parameter(&mut self, name: &Node) -> Result<(), EditError> {
        let pname = name.s.value.clone();
        let Some(stem) = pname
            .strip_suffix(".name")
            .or_else(|| pname.strip_suffix(".repository"))
        else {
            return Ok(());
        };
        let Some(value) = self.sibling(name, "value") else {
            return Ok(());
        };
        let repo = value.s.value.clone();
        if !self.matches(&value, &repo) {
            return Ok(());
        }
        self.found(&value, path_string(&value.s.path), repo);
        // The list the parameter is in: find `<stem>.tag` among its items.
        let list = &name.s.path[..name.s.path.len() - 2];
        let tag_name = format!("{stem}.tag");
        let tag_item = self
            .nodes
            .iter()
            .find(|x| {
                x.s.doc == name.s.doc
                    && x.s.path.len() == name.s.path.len()
                    && x.s.path.starts_with(list)
                    && key_of(x) == "name"
                    && x.s.value == tag_name
            })
            .cloned();
        match tag_item.and_then(|t| self.sibling(&t, "value")) {
            Some(t) => self.tag_field(&t, None),
            None if self.target.tag.is_some() => {
                Err(self.missing(name, &path_string(list), &tag_name))
            }
            None => Ok(()),
        }
    }

    /// Flux `OCIRepository`: `url: oci://registry/repo` with `ref.tag` and/or `ref.digest`.
    fn oci_repository(&mut self, url: &Node) -> Result<(), EditError> {
        let repo = url.s.value.trim_start_matches("oci://").to_string();
        if !self.matches(url, &repo) {
            return Ok(());
        }
        let parent = parent_of(url).to_vec();
        let tag = self.at(url.s.doc, &parent, &["ref", "tag"]);
        let digest = self.at(url.s.doc, &parent, &["ref", "digest"]);
        self.found(url, path_string(&parent), url.s.value.clone());
        match (&tag, &digest) {
            (Some(t), d) => self.tag_field(t, d.as_ref()),
            (None, Some(d)) if self.target.tag.is_none() => match &self.target.digest {
                Some(new) => self.set(d, new.clone()),
                None => Ok(()),
            },
            _ => Err(self.missing(url, &format!("{}.ref", path_string(&parent)), "tag")),
        }
    }
}
