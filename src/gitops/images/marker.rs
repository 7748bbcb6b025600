//! Flux image-automation setter markers: `# {"$imagepolicy": "ns:policy[:tag|:name|:digest]"}` in a value's
//! line comment. Flux reads the comment as JSON after stripping the `#`s, so text after the JSON disables the
//! marker there too; the policy part is `namespace:name`, the optional third part picks the field.
//!
//! What each writes, as Flux does: `ns:policy` the policy's image, name and tag (and the digest where the
//! value was pinned); `:tag` the tag; `:digest` the digest; `:name` the image name.

use super::resolve::Node;
use super::{EditError, Planner, path_string};
use std::collections::BTreeMap;

/// Does the file carry any setter marker? (Flux screens files for this literal before parsing them.)
pub(super) fn carries_markers(text: &str) -> bool {
    text.contains("\"$imagepolicy\"")
}

/// The `(ns:policy, field)` of the marker in the comment after byte `end` on its line.
fn marker_at(text: &str, end: usize) -> Option<(String, Option<String>)> {
    let rest = text.get(end..)?;
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let comment = line[line.find('#')?..]
        .trim_start_matches('#')
        .trim()
        .trim_end_matches('\r');
    let map = serde_json::from_str::<BTreeMap<String, String>>(comment).ok()?;
    let policy = map.get("$imagepolicy")?;
    let mut parts = policy.splitn(3, ':');
    let (ns, name) = (parts.next()?, parts.next()?);
    Some((format!("{ns}:{name}"), parts.next().map(str::to_string)))
}

impl Planner<'_> {
    pub(super) fn marker(&mut self, n: &Node) -> Result<(), EditError> {
        let Some((policy, field)) = marker_at(self.text, n.s.end) else {
            return Ok(());
        };
        if !self.target.policies.contains(&policy) {
            return Ok(());
        }
        self.found(n, path_string(&n.s.path), n.s.value.clone());
        let name = self
            .target
            .new_name
            .clone()
            .unwrap_or_else(|| self.target.name.clone());
        match field.as_deref() {
            None => {
                // Flux writes `name:tag@digest` when the policy reflects digests: a digest given is written.
                self.pin = super::Pin::Always;
                let r = self.image_string(n, "", Some(&name));
                self.pin = self.target.pin;
                r
            }
            Some("tag") if n.s.value.contains('@') => self.tag_field(n, None),
            Some("tag") => match self.target.tag.clone() {
                Some(t) => {
                    self.expect(n, Some(&n.s.value.clone()), None)?;
                    self.set(n, t)
                }
                None => Ok(()),
            },
            Some("digest") => match self.target.digest.clone() {
                Some(d) => {
                    self.expect(n, None, Some(&n.s.value.clone()))?;
                    self.set(n, d)
                }
                None => Ok(()),
            },
            Some("name") => self.set(n, name),
            Some(_) => Ok(()),
        }
    }
}
