//! What a release will do, step by step, as typed data: `actions[]` of `release --dry-run --output json` and
//! of a saved plan, in order (`image`, `referrer`, signatures, `tag`, `gitops`, `work_pool`, `deployment`).

use super::{Plan, bump};
use serde::Serialize;

impl Plan {
    /// One entry per thing the release does, in order (`--output json`'s `actions[]`).
    pub fn actions(&self) -> Vec<Action<'_>> {
        let i = &self.image;
        let untagged: Vec<&String> = i.tags.iter().filter(|t| !i.tagged.contains(t)).collect();
        let mut out = vec![Action::Image {
            action: if i.present { Verb::None } else { Verb::Push },
            reference: i.reference(),
            digest: &i.digest,
            blobs: i.blobs,
            blobs_missing: i.blobs_missing,
            bytes_missing: i.bytes_missing,
        }];
        out.extend(i.referrers.iter().map(|r| Action::Referrer {
            action: if r.present { Verb::None } else { Verb::Attach },
            artifact_type: &r.artifact_type,
            digest: &r.digest,
        }));
        for (attestation, s) in [(true, &i.attestation), (false, &i.signature)] {
            if let Some(s) = s {
                let (action, tag, signatures, key) = (
                    if s.present { Verb::None } else { Verb::Sign },
                    s.tag.as_str(),
                    s.signatures,
                    s.key.as_deref(),
                );
                out.push(match attestation {
                    true => Action::Attestation {
                        action,
                        tag,
                        signatures,
                        key,
                    },
                    false => Action::Signature {
                        action,
                        tag,
                        signatures,
                        key,
                    },
                });
            }
        }
        out.push(Action::Tag {
            action: if untagged.is_empty() {
                Verb::None
            } else {
                Verb::Tag
            },
            tags: untagged,
        });
        out.push(Action::Gitops {
            action: if self.gitops.is_empty() {
                Verb::None
            } else {
                Verb::Commit
            },
            repo: &self.gitops.repo,
            branch: &self.gitops.branch,
            changes: &self.gitops.changes,
            extras: &self.gitops.extras,
        });
        for p in &self.prefect.pools {
            if let Some(kind) = p.create.as_deref().filter(|_| !p.exists) {
                out.push(Action::WorkPool {
                    action: Verb::Create,
                    name: &p.name,
                    kind: Some(kind),
                    registry_block: p.registry_block.as_deref(),
                    pull_secret: None,
                });
            }
            if let Some(b) = &p.refresh_block {
                out.push(Action::WorkPool {
                    action: Verb::UpdateRegistryBlock,
                    name: &p.name,
                    kind: None,
                    registry_block: Some(b),
                    pull_secret: None,
                });
            }
            if let Some(s) = p.pull_secret.as_deref().filter(|_| p.exists) {
                out.push(Action::WorkPool {
                    action: Verb::AddPullSecret,
                    name: &p.name,
                    kind: None,
                    registry_block: None,
                    pull_secret: Some(s),
                });
            }
        }
        // A plan says what it will do, as the other steps do; the outcome says what was done.
        out.extend(self.prefect.deployments.iter().map(|d| Action::Deployment {
            action: d.action.verb(),
            name: &d.name,
            work_pool: d.work_pool.as_deref(),
            changes: &d.changes,
        }));
        out
    }
}
/// What a release will do, step by step: `actions[]` of `release --dry-run --output json` and of a saved plan.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Action<'a> {
    Image {
        action: Verb,
        #[serde(rename = "ref")]
        reference: String,
        digest: &'a str,
        blobs: usize,
        blobs_missing: usize,
        bytes_missing: u64,
    },
    Referrer {
        action: Verb,
        artifact_type: &'a str,
        digest: &'a str,
    },
    Attestation {
        action: Verb,
        tag: &'a str,
        signatures: usize,
        key: Option<&'a str>,
    },
    Signature {
        action: Verb,
        tag: &'a str,
        signatures: usize,
        key: Option<&'a str>,
    },
    Tag {
        action: Verb,
        tags: Vec<&'a String>,
    },
    Gitops {
        action: Verb,
        repo: &'a str,
        branch: &'a str,
        changes: &'a [crate::gitops::images::Change],
        extras: &'a [bump::ExtraChange],
    },
    WorkPool {
        action: Verb,
        name: &'a str,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        registry_block: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pull_secret: Option<&'a str>,
    },
    Deployment {
        action: &'static str,
        name: &'a str,
        work_pool: Option<&'a str>,
        changes: &'a [crate::prefect::compare::FieldChange],
    },
}

/// What a step does: none when it is in place already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    None,
    Push,
    Attach,
    Sign,
    Tag,
    Commit,
    Create,
    UpdateRegistryBlock,
    AddPullSecret,
}
