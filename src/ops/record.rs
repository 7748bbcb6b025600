//! The release record: what an environment was released *with*, beside what it pins. One file per
//! environment in the GitOps repository (`.flowship/releases/<env>.json`), written in the same commit as the
//! pin, so the two can never disagree and the history of one is the history of the other: the image (by
//! digest), the source commit, and every deployment's definition as released. Definitions are kept as
//! prefect.yaml's own text (templates, never the values of secrets, variables or blocks: those are resolved
//! again when a record is registered) and each flow as its source said then (name, description, parameter
//! schema, version). A rollback, `status` and a release that finds a newer pin register or compare *that*,
//! whatever the checkout they run in holds.
//!
//! Why in the GitOps repository rather than as an OCI artifact of the image: the pin and its record then
//! move in one atomic commit (a concurrent release cannot land between them), rollback and status already
//! read that branch, and the record names environment-specific facts an image does not have. It lives in
//! `.flowship/`, which no Kustomization names and Flux's generator skips (a hidden directory): overlays
//! render as before (`tests/it/render.rs`).

use crate::prefect::project::{Project, RecordedFlow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn path(environment: &str) -> String {
    format!(".flowship/releases/{environment}.json")
}

/// One prefect.yaml as released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedProject {
    /// Its path from the working directory of the release.
    pub file: PathBuf,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub flowship_release: u32,
    pub environment: String,
    /// `repo:tag@digest`.
    pub image: String,
    #[serde(default)]
    pub source_commit: Option<String>,
    pub projects: Vec<RecordedProject>,
    /// Flows by entrypoint.
    pub flows: BTreeMap<String, RecordedFlow>,
    /// Steps the release skipped on purpose (`--skip-step`), skipped again when the record is registered.
    #[serde(default)]
    pub skip_steps: Vec<String>,
    /// The pipeline's commit and branch the deployments' `version`/`version_info` came from (GitLab CI).
    #[serde(default)]
    pub gitlab: Option<crate::prefect::project::GitlabVersion>,
}

impl Record {
    pub fn new(
        environment: &str,
        image: String,
        source_commit: Option<String>,
        projects: Vec<RecordedProject>,
        plans: &[&crate::prefect::project::Plan],
        skip_steps: Vec<String>,
        gitlab: Option<crate::prefect::project::GitlabVersion>,
    ) -> Self {
        Self {
            flowship_release: 1,
            environment: environment.to_string(),
            image,
            source_commit,
            projects,
            flows: plans
                .iter()
                .map(|p| (p.entrypoint.clone(), p.flow.clone()))
                .collect(),
            skip_steps,
            gitlab,
        }
    }

    pub fn render(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string_pretty(self).unwrap_or_default()
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|r| r.flowship_release == 1)
    }

    /// The same release (the source commit aside: a re-run from a later commit that builds the same digest
    /// and registers the same definitions changes nothing, and writes nothing).
    pub fn same_release(&self, other: &Record) -> bool {
        // (`gitlab` stays: it is the deployments' version, which a new pipeline changes in Prefect too.)
        let strip = |r: &Record| Record {
            source_commit: None,
            ..r.clone()
        };
        strip(self) == strip(other)
    }

    /// The digest it released.
    pub fn digest(&self) -> Option<String> {
        crate::registry::Reference::parse(&self.image)
            .ok()
            .and_then(|r| r.digest)
    }

    /// Its prefect.yaml files as projects whose flows come from the record, not from the checkout.
    pub fn projects(&self) -> Result<Vec<Project>, crate::error::Error> {
        self.projects
            .iter()
            .map(|p| {
                Project::from_text(&p.file, p.text.clone(), Some(self.flows.clone()))
                    .map_err(crate::error::Error::from)
            })
            .collect()
    }
}
