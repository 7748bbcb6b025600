//! Saved plans (`--plan-out FILE`, `--plan FILE`): the plan as an artifact that holds no secret (the digest,
//! each GitOps edit with the value it replaces, a fingerprint of each deployment's payload), optionally signed
//! (`FLOWSHIP_PLAN_KEY`); and the checks that a run applies only where and from what its saved plan was made.

use super::{Plan, bump, image, register};
use crate::error::Error;
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedImage {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedGitops {
    pub repo: String,
    pub branch: String,
    pub changes: Vec<bump::Expected>,
    pub extras: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedDeployment {
    pub name: String,
    pub action: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPrefect {
    pub api_url: String,
    pub deployments: Vec<SavedDeployment>,
}

/// A plan as written by `--plan-out`: no secret in it (payloads are fingerprints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub flowship_plan: u32,
    /// Seconds since the epoch.
    pub created: u64,
    /// Mixed into the deployments' fingerprints (unsalted hashes of payloads with weak secrets in them could
    /// be matched against guesses).
    #[serde(default)]
    pub salt: String,
    /// HMAC-SHA256 of the plan without this field, under `FLOWSHIP_PLAN_KEY` (when one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    pub environment: Option<String>,
    pub source_commit: Option<String>,
    pub image: SavedImage,
    pub gitops: SavedGitops,
    pub prefect: SavedPrefect,
    pub actions: Vec<Value>,
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Saved {
    pub fn load(path: &std::path::Path, max_age: u64) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Usage {
            message: format!("saved plan `{}` cannot be read: {e}", path.display()),
            hint: Some("pass the file `release --plan-out` wrote".into()),
        })?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| Error::Usage {
            message: format!("`{}` is not a flowship plan: {e}", path.display()),
            hint: Some("pass the file `release --plan-out` wrote".into()),
        })?;
        if saved.flowship_plan != 1 {
            return Err(Error::Usage {
                message: format!("`{}` is a plan of another flowship version", path.display()),
                hint: Some("make the plan with this version".into()),
            });
        }
        let age = now().saturating_sub(saved.created);
        if age > max_age {
            return Err(Error::Policy {
                message: format!(
                    "the saved plan `{}` is {} old, older than --plan-max-age ({}); nothing was written",
                    path.display(),
                    human_duration(age),
                    human_duration(max_age)
                ),
                hint: Some("make a new plan (release --plan-out), or raise --plan-max-age".into()),
            });
        }
        Ok(saved)
    }
}

impl Saved {
    /// HMAC-SHA256 (hex) of the plan as serialised without its `mac`.
    fn mac_of(&self, key: &[u8]) -> String {
        use hmac::Mac;
        let bare = Saved {
            mac: None,
            ..self.clone()
        };
        let bytes = serde_json::to_vec(&bare).unwrap_or_default();
        let mut m =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(&bytes);
        hex::encode(m.finalize().into_bytes())
    }

    /// Sign the plan with `key` (`FLOWSHIP_PLAN_KEY`).
    pub fn sign(&mut self, key: &[u8]) {
        self.mac = None;
        self.mac = Some(self.mac_of(key));
    }

    /// With a key, the plan must carry a valid mac (refused otherwise: edited in transit, or unsigned); a
    /// signed plan without a key to check it is refused too.
    pub fn verify(&self, key: Option<&[u8]>) -> Result<(), Error> {
        use hmac::Mac;
        match (key, &self.mac) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(conflict(
                "the saved plan is signed, and no FLOWSHIP_PLAN_KEY is set to check it; nothing was written".into(),
            )),
            (Some(_), None) => Err(conflict(
                "the saved plan is not signed, and FLOWSHIP_PLAN_KEY is set; nothing was written".into(),
            )),
            (Some(k), Some(mac)) => {
                let bare = Saved {
                    mac: None,
                    ..self.clone()
                };
                let bytes = serde_json::to_vec(&bare).unwrap_or_default();
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).expect("any key length");
                m.update(&bytes);
                let given = hex::decode(mac).unwrap_or_default();
                m.verify_slice(&given).map_err(|_| {
                    conflict("the saved plan was changed after it was made (its signature does not match FLOWSHIP_PLAN_KEY); nothing was written".into())
                })
            }
        }
    }
}

fn human_duration(s: u64) -> String {
    match s {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}m{}s", s / 60, s % 60),
    }
}

pub(super) fn conflict(message: String) -> Error {
    Error::Policy {
        message,
        hint: Some("something changed since the plan was made: make a new plan".into()),
    }
}

/// A saved plan applies where and from what it was made: the same source commit, GitOps repository and
/// branch, Prefect server. Anything else is refused (the file is an artifact other jobs can edit).
pub(super) fn check_saved_targets(
    saved: &Saved,
    settings: &Settings,
    image: &image::Plan,
    gitops: &bump::Plan,
    prefect: &register::Plan,
) -> Result<(), Error> {
    let now = settings.ci.commit_sha.clone();
    if saved.source_commit.is_some() && saved.source_commit != now {
        return Err(conflict(format!(
            "the saved plan was made at commit {}, this run is at {}; nothing was written",
            saved.source_commit.as_deref().unwrap_or("-"),
            now.as_deref()
                .unwrap_or("an unknown commit (no CI_COMMIT_SHA)")
        )));
    }
    for (what, want, have) in [
        (
            "image repository",
            &saved.image.repository,
            &image.repository,
        ),
        ("GitOps repository", &saved.gitops.repo, &gitops.repo),
        ("GitOps branch", &saved.gitops.branch, &gitops.branch),
        ("Prefect server", &saved.prefect.api_url, &prefect.api_url),
    ] {
        if want != have {
            return Err(conflict(format!(
                "the saved plan is for the {what} {want}, this run's is {have}; nothing was written"
            )));
        }
    }
    Ok(())
}

pub(super) fn check_saved_deployments(
    saved: &Saved,
    prefect: &register::Plan,
) -> Result<(), Error> {
    for d in &prefect.deployments {
        match saved.prefect.deployments.iter().find(|s| s.name == d.name) {
            Some(s) if s.fingerprint == d.fingerprint => {}
            Some(_) => {
                return Err(conflict(format!(
                    "deployment `{}` would be registered differently than the saved plan says (prefect.yaml, a variable or a block changed); nothing was written",
                    d.name
                )));
            }
            None => {
                return Err(conflict(format!(
                    "deployment `{}` is not in the saved plan; nothing was written",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

impl Plan {
    /// The plan as `--plan-out` writes it.
    pub fn saved(&self, settings: &Settings) -> Saved {
        Saved {
            flowship_plan: 1,
            created: now(),
            salt: self.salt.clone(),
            mac: None,
            environment: self.environment.clone(),
            source_commit: settings.ci.commit_sha.clone(),
            image: SavedImage {
                repository: self.image.repository.clone(),
                digest: self.image.digest.clone(),
                tags: self.image.tags.clone(),
            },
            gitops: SavedGitops {
                repo: self.gitops.repo.clone(),
                branch: self.gitops.branch.clone(),
                changes: self
                    .gitops
                    .changes
                    .iter()
                    .map(|c| bump::Expected {
                        file: c.file.clone(),
                        path: c.path.clone(),
                        old: c.old.clone(),
                        new: c.new.clone(),
                    })
                    .collect(),
                extras: self.gitops.extras.iter().map(|e| e.path.clone()).collect(),
            },
            prefect: SavedPrefect {
                api_url: self.prefect.api_url.clone(),
                deployments: self
                    .prefect
                    .deployments
                    .iter()
                    .map(|d| SavedDeployment {
                        name: d.name.clone(),
                        action: d.action.as_str().into(),
                        fingerprint: d.fingerprint.clone(),
                    })
                    .collect(),
            },
            actions: self
                .actions()
                .iter()
                .filter_map(|a| serde_json::to_value(a).ok())
                .collect(),
        }
    }
}
