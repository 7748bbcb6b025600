//! Why an image edit was refused: each names the file, line and YAML path, and most carry the fix.

use crate::gitops::yaml::YamlError;

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
    /// The value comes from an anchor: through `key: *name` or a merge key (`<<: *name`).
    #[error(
        "{file}:{line}: `{path}` comes from {how} `*{alias}` (anchor `&{alias}` on line {anchor_line}); editing it there would change every place that uses the anchor"
    )]
    Alias {
        file: String,
        /// The alias's line.
        line: usize,
        path: String,
        alias: String,
        anchor_line: usize,
        /// "the alias" or "the merge key (`<<`)".
        how: &'static str,
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
    /// `--expect-tag` / `--expect-digest`: the file holds something else (a compare-and-set that lost).
    #[error(
        "{file}:{line}: `{path}` holds {what} `{found}`, not the expected `{expected}`; nothing was written"
    )]
    Unexpected {
        file: String,
        line: usize,
        path: String,
        what: &'static str,
        found: String,
        expected: String,
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
            EditError::Alias {
                path, anchor_line, ..
            } => {
                let (parent, key) = path.rsplit_once('.').unwrap_or(("the mapping", path));
                Some(format!(
                    "give `{parent}` its own `{key}:` (a key written in the mapping wins over a merged one), or edit the anchor on line {anchor_line} by hand if every place that uses it should move"
                ))
            }
            EditError::Unexpected { .. } => Some(
                "someone else changed the value since: check the GitOps history, or drop --expect-tag/--expect-digest to overwrite it".into(),
            ),
            _ => None,
        }
    }

    /// A compare-and-set that found another value is a refusal by rule (exit 3), not bad input.
    pub fn is_policy(&self) -> bool {
        matches!(self, EditError::Unexpected { .. })
    }
}
