//! What an environment runs, computed live from the three places that decide it: the image its GitOps branch
//! pins (every place, with file and line), whether the registry has that digest and where the pinned tag
//! points, and what each Prefect deployment of the project runs (from the same plan `register` makes, with
//! the pin as the image: a deployment it would update runs something else). Drift is any disagreement.

use super::{Context, pins, register};
use crate::error::Error;
use crate::output::Printer;
use crate::settings::Settings;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// `pins_disagree`, `not_pinned`, `digest_missing`, `tag_moved`, `prefect_differs`, `deployment_changed`,
    /// `deployment_missing`, `deployment_extra`, `work_pool_missing`.
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Registry {
    pub repository: String,
    /// The registry has the pinned digest.
    pub present: Option<bool>,
    /// The pinned tag, and the digest it points at now.
    pub tag: Option<String>,
    pub tag_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub name: String,
    pub id: Option<String>,
    /// in_sync | differs | missing.
    pub state: &'static str,
    pub work_pool: Option<String>,
    /// The image it runs (`job_variables.image`), when it exists.
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub environment: Option<String>,
    pub gitops: Option<pins::Pins>,
    pub registry: Option<Registry>,
    pub deployments: Vec<Deployment>,
    pub drift: Vec<Drift>,
    /// Informational, not drift: the checkout's prefect.yaml or flows differ from what the pinned release
    /// recorded (the next release registers them). A new commit alone is never drift.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// What could not be read (a service down): the environment's status is unknown, not in sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code the error has on its own (2 for a refusal by configuration).
    #[serde(skip)]
    pub error_exit: u8,
}

impl Environment {
    pub fn in_sync(&self) -> bool {
        self.drift.is_empty() && self.error.is_none()
    }
}

/// One environment's status. A failure to read one side is recorded, not raised: the other sides are still
/// reported.
pub async fn environment(ctx: &Context<'_>, settings: &Settings, printer: &Printer) -> Environment {
    let name = settings.environment.as_ref().map(|e| e.value.clone());
    let mut env = Environment {
        environment: name,
        gitops: None,
        registry: None,
        deployments: Vec::new(),
        drift: Vec::new(),
        pending: Vec::new(),
        error: None,
        error_exit: 0,
    };
    let pins = match pins::read(ctx, settings).await {
        Ok(p) => p,
        Err(e) => {
            env.error = Some(e.render());
            env.error_exit = e.exit_code();
            return env;
        }
    };
    match (pins.digests.len(), pins.places.is_empty()) {
        (_, true) => env.drift.push(Drift {
            kind: "not_pinned",
            detail: "the GitOps branch references the image nowhere in the environment's targets"
                .into(),
        }),
        (0, _) => env.drift.push(Drift {
            kind: "not_pinned",
            detail: format!(
                "pinned by tag only ({}), not by digest",
                pins.tags.join(", ")
            ),
        }),
        (1, _) => {
            // One digest, but a place that pins by tag only (a Kustomize entry without `digest:`).
            // (A tag field beside a digest field is pinned: only a file with no digest anywhere is not.)
            let by_tag: Vec<String> = pins
                .places
                .iter()
                .filter(|p| {
                    !pins
                        .places
                        .iter()
                        .any(|q| q.file == p.file && pins::digest_of(&q.value).is_some())
                })
                .map(|p| format!("{}:{} {}", p.file, p.line, p.value))
                .collect();
            if !by_tag.is_empty() {
                env.drift.push(Drift {
                    kind: "not_pinned",
                    detail: format!("pinned by tag only at {}", by_tag.join("; ")),
                });
            }
        }
        _ => env.drift.push(Drift {
            kind: "pins_disagree",
            detail: format!(
                "the targets pin different digests: {}",
                pins.places
                    .iter()
                    .map(|p| format!("{}:{} {}", p.file, p.line, p.value))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
    if let Some(digest) = &pins.digest {
        match registry(ctx, settings, digest, pins.tag.as_deref()).await {
            Ok(r) => {
                if r.present == Some(false) {
                    env.drift.push(Drift {
                        kind: "digest_missing",
                        detail: format!("{}@{digest} is not in the registry", r.repository),
                    });
                }
                if let (Some(t), Some(d)) = (&r.tag, &r.tag_digest)
                    && d != digest
                {
                    env.drift.push(Drift {
                        kind: "tag_moved",
                        detail: format!(
                            "{}:{t} points at {d}, the GitOps pin is {digest}",
                            r.repository
                        ),
                    });
                }
                env.registry = Some(r);
            }
            Err(e) => {
                env.error = Some(e.render());
                env.error_exit = env.error_exit.max(e.exit_code());
            }
        }
        let pin = pinned_reference(settings, &pins, digest);
        // Prefect is compared with what the pinned release recorded, when it did.
        let record = pins
            .record
            .as_ref()
            .filter(|r| r.digest().as_deref() == Some(digest.as_str()));
        if let Some(r) = record {
            env.pending = pending(r);
        }
        match deployments(ctx, settings, &pin, record, printer).await {
            Ok((ds, drift)) => {
                env.deployments = ds;
                env.drift.extend(drift);
            }
            Err(e) => {
                env.error = Some(e.render());
                env.error_exit = env.error_exit.max(e.exit_code());
            }
        }
    }
    env.gitops = Some(pins);
    env
}

fn pinned_reference(settings: &Settings, pins: &pins::Pins, digest: &str) -> String {
    let repo = settings
        .image
        .as_ref()
        .map(|i| i.value.repository_ref())
        .unwrap_or_default();
    match &pins.tag {
        Some(t) => format!("{repo}:{t}@{digest}"),
        None => format!("{repo}@{digest}"),
    }
}

async fn registry(
    ctx: &Context<'_>,
    settings: &Settings,
    digest: &str,
    tag: Option<&str>,
) -> Result<Registry, Error> {
    let image = settings
        .image
        .as_ref()
        .expect("pins::read checked it")
        .value
        .clone();
    let session = ctx.registry(settings, &image).await?;
    // A Harbor project that does not exist holds no digest: drift to report, not an error.
    let get = |reference: String| {
        let session = &session;
        let repository = image.repository.clone();
        async move {
            match session.manifest_get(&repository, &reference).await {
                Err(crate::registry::RegistryError::ProjectNotFound { .. }) => Ok(None),
                other => other.map(|m| m.map(|(_, _, d)| d)),
            }
        }
    };
    let present = Some(get(digest.to_string()).await?.is_some());
    let tag_digest = match tag {
        Some(t) => get(t.to_string()).await?,
        None => None,
    };
    Ok(Registry {
        repository: image.repository_ref(),
        present,
        tag: tag.map(str::to_string),
        tag_digest,
    })
}

/// What the checkout would register that the record does not hold: its prefect.yaml files' texts, and the
/// flows the record's entrypoints point at now.
fn pending(record: &super::record::Record) -> Vec<String> {
    let mut out = Vec::new();
    for p in &record.projects {
        match std::fs::read_to_string(&p.file) {
            Ok(t) if t == p.text => {}
            Ok(_) => out.push(format!(
                "{} changed since {} was released",
                p.file.display(),
                record.image
            )),
            Err(_) => out.push(format!("{} is not in this checkout", p.file.display())),
        }
    }
    let projects: Vec<crate::prefect::project::Project> = record
        .projects
        .iter()
        .filter_map(|p| crate::prefect::project::Project::load(&p.file).ok())
        .collect();
    for (entrypoint, flow) in &record.flows {
        let now = projects.iter().find_map(|p| p.source_flow(entrypoint));
        if now.as_ref() != Some(flow) {
            out.push(format!(
                "flow `{entrypoint}` changed since {} was released",
                record.image
            ));
        }
    }
    out
}

async fn deployments(
    ctx: &Context<'_>,
    settings: &Settings,
    pin: &str,
    record: Option<&super::record::Record>,
    printer: &Printer,
) -> Result<(Vec<Deployment>, Vec<Drift>), Error> {
    let (repo, digest) = pin.split_once('@').unwrap_or((pin, ""));
    let (repository, tag) = match repo.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
        _ => (repo.to_string(), None),
    };
    let image = crate::prefect::project::StepImage {
        repository,
        tag,
        digest: Some(digest.to_string()),
    };
    let mut req = super::release::registration(ctx, settings, image, record, &[])?;
    // A missing pool is drift to report, not an error that hides the rest.
    req.create_work_pool = Some("process".into());
    let plan = register::plan(&req, printer).await?;
    let mut drift = Vec::new();
    for p in plan.pools.iter().filter(|p| !p.exists) {
        drift.push(Drift {
            kind: "work_pool_missing",
            detail: format!("work pool `{}` does not exist", p.name),
        });
    }
    // A kubernetes pool pulling from a registry that needs a login, without an image pull secret: its pods
    // cannot pull the pinned image.
    let private = settings
        .image
        .as_ref()
        .is_some_and(|i| settings.credential(&i.value.registry).is_some());
    for p in &plan.pools {
        if let Some(w) = p.existing.as_ref().filter(|w| w.kind == "kubernetes") {
            let secrets = w.pull_secrets();
            if private && secrets.is_empty() || p.pull_secret.is_some() {
                drift.push(Drift {
                    kind: "pull_secret_missing",
                    detail: format!(
                        "kubernetes work pool `{}` names {} image pull secret{}",
                        p.name,
                        p.pull_secret
                            .as_deref()
                            .map(|s| format!("no `{s}`"))
                            .unwrap_or_else(|| "no".into()),
                        if p.pull_secret.is_some() {
                            ""
                        } else {
                            ", and the registry needs a login"
                        }
                    ),
                });
            }
        }
    }
    let mut out = Vec::new();
    for d in &plan.deployments {
        let image = d.running.clone();
        let state = match d.action {
            register::Action::Created => {
                drift.push(Drift {
                    kind: "deployment_missing",
                    detail: format!("{} is in prefect.yaml but not on the server", d.name),
                });
                "missing"
            }
            register::Action::Unchanged => "in_sync",
            _ => {
                let image_differs = image.as_deref() != Some(pin);
                drift.push(if image_differs {
                    Drift {
                        kind: "prefect_differs",
                        detail: format!(
                            "{} runs {}, the GitOps pin is {pin}",
                            d.name,
                            image.as_deref().unwrap_or("no image")
                        ),
                    }
                } else {
                    Drift {
                        kind: "deployment_changed",
                        detail: format!(
                            "{} differs from prefect.yaml in {}",
                            d.name,
                            d.changes
                                .iter()
                                .map(|c| c.field.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                });
                "differs"
            }
        };
        out.push(Deployment {
            name: d.name.clone(),
            id: d.id.clone(),
            state,
            work_pool: d.work_pool.clone(),
            image,
            url: d
                .id
                .as_deref()
                .map(|id| crate::prefect::ui_url(&plan.api_url, id)),
        });
    }
    for o in &plan.others {
        drift.push(Drift {
            kind: "deployment_extra",
            detail: format!("{o} is on the server but not in prefect.yaml"),
        });
    }
    Ok((out, drift))
}
