//! What an environment's GitOps branch pins: every place the image is referenced in its targets (or under its
//! paths), with file, line and value. Found by the bump planner itself (`Bumper::references`): the values it
//! would replace to set an impossible tag and digest are exactly the current pins, in every shape it knows
//! (image strings, repository blocks, Kustomize `images:`, Flux setters), and only there.

use super::{Context, bump};
use crate::error::Error;
use crate::settings::Settings;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub file: String,
    pub line: usize,
    pub path: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pins {
    pub repo: String,
    pub branch: String,
    pub commit: String,
    pub places: Vec<Pin>,
    /// The digest every place agrees on (`None` when none has one, or they disagree).
    pub digest: Option<String>,
    /// The tag they agree on, likewise.
    pub tag: Option<String>,
    /// Distinct digests found (more than one: the targets disagree).
    pub digests: Vec<String>,
    pub tags: Vec<String>,
    /// The release record committed with the pins (`None`: released before flowship recorded releases).
    #[serde(skip)]
    pub record: Option<super::record::Record>,
}

/// The digest inside a value (`repo:tag@sha256:…`, `tag@sha256:…`, `sha256:…`).
pub fn digest_of(value: &str) -> Option<String> {
    let i = value.find("sha256:")?;
    let d = &value[i..];
    let d: String = d.chars().take(7 + 64).collect();
    crate::registry::is_digest(&d).then_some(d)
}

/// The environment's GitOps branch opened for reading only (a probe digest that is never planned, no
/// merge-request branch): what pins and the release history are read from.
/// `depth`: how much history the reader needs (1: the tip only).
pub(super) async fn reader(
    ctx: &Context<'_>,
    settings: &Settings,
    repository: String,
    depth: usize,
) -> Result<bump::Bumper, Error> {
    let mut req = bump::Request::reading(settings, repository)?;
    req.mr = None;
    bump::Bumper::open(ctx.clones(), req, depth).await
}

/// The environment's pins, read from its branch (a shallow clone; nothing written).
pub async fn read(ctx: &Context<'_>, settings: &Settings) -> Result<Pins, Error> {
    let image = settings.image.as_ref().ok_or_else(|| Error::Usage {
        message: "the environment names no image repository".into(),
        hint: Some("set image.repository (or environments.E.image.repository)".into()),
    })?;
    let bumper = reader(ctx, settings, image.value.repository_ref(), 1).await?;
    let settings_ = settings.clone();
    tokio::task::spawn_blocking(move || of(&settings_, &bumper))
        .await
        .map_err(|e| Error::Internal(format!("pins panicked: {e}")))?
}

/// The pins of the branch `bumper` has (blocking: reads the clone).
pub fn of(settings: &Settings, bumper: &bump::Bumper) -> Result<Pins, Error> {
    let record_path = settings
        .environment
        .as_ref()
        .map(|e| super::record::path(&e.value));
    let references = bumper.references()?;
    let base = bumper.base();
    let record = record_path
        .and_then(|p| bumper.read_file(&p))
        .and_then(|t| super::record::Record::parse(&t));
    let places: Vec<Pin> = references
        .iter()
        .map(|c| Pin {
            file: c.file.clone(),
            line: c.line,
            path: c.path.clone(),
            value: c.old.clone(),
        })
        .collect();
    let mut digests: Vec<String> = places.iter().filter_map(|p| digest_of(&p.value)).collect();
    digests.sort();
    digests.dedup();
    let mut tags: Vec<String> = places
        .iter()
        .filter_map(|p| crate::gitops::order::tag_of(&p.value).map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    Ok(Pins {
        repo: crate::secret::redact_url(
            settings
                .gitops
                .repo
                .as_ref()
                .map(|r| r.value.as_str())
                .unwrap_or(""),
        ),
        branch: settings.gitops.branch.value.clone(),
        commit: base,
        digest: (digests.len() == 1).then(|| digests[0].clone()),
        tag: (tags.len() == 1).then(|| tags[0].clone()),
        places,
        digests,
        tags,
        record,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_inside_values() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(super::digest_of(&format!("h/x:1@{d}")), Some(d.clone()));
        assert_eq!(super::digest_of(&d), Some(d.clone()));
        assert_eq!(super::digest_of("1.2.3"), None);
    }
}
