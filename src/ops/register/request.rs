//! What a registration is asked to do, resolved once from the settings: the files, the server's client (the
//! run's, from the context), which deployments, the image and pools they are placed in.

use super::{files, usage};
use crate::error::Error;
use crate::prefect::Prefect;
use crate::prefect::payload::{Pool, PullCredentials};
use crate::prefect::project::{GitlabVersion, StepImage};
use crate::settings::Settings;
use globset::Glob;
use std::path::PathBuf;
use std::sync::Arc;

/// Which deployments of the file.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Names(Vec<String>),
    /// `--all` unless the file has several: then the caller must say.
    Default,
}

pub struct Request {
    /// The prefect.yaml files (directories already expanded), registered as one plan.
    pub files: Vec<PathBuf>,
    pub client: Arc<Prefect>,
    pub image: Option<StepImage>,
    pub selection: Selection,
    pub skip_steps: Vec<String>,
    /// For deployments that name none.
    pub default_work_pool: Option<String>,
    /// Instead of the file's pools (an environment's, one per cluster).
    pub pools: Vec<Pool>,
    pub create_work_pool: Option<String>,
    pub concurrency: usize,
    pub env: std::collections::BTreeMap<String, String>,
    pub gitlab: Option<GitlabVersion>,
    /// The image every deployment runs (a release's pin, by digest): set as `job_variables.image` where the
    /// file names none or names another tag of the same repository.
    pub pin_image: Option<String>,
    /// The image registry's credentials, for the registry block of a docker pool flowship creates.
    pub pull_credentials: Option<PullCredentials>,
    /// A pool's registry block holding another user's login may be replaced.
    pub replace_registry_block: bool,
    /// Warnings about the file are errors.
    pub strict: bool,
    /// Delete the projects' marked deployments that the files no longer name.
    pub prune: bool,
    /// Register a release record's definitions instead of the files (rollback, a newer release's record).
    pub record: Option<crate::ops::record::Record>,
    /// The Kubernetes image pull secret kubernetes pools must name.
    pub pull_secret: Option<String>,
    /// Mixed into every payload fingerprint (a saved plan's own salt): a fingerprint of a payload that holds
    /// a weak secret cannot be matched against guesses without it.
    pub salt: String,
}

impl Request {
    pub fn new(
        ctx: &crate::ops::Context<'_>,
        settings: &Settings,
        selection: Selection,
        skip_steps: Vec<String>,
    ) -> Result<Self, Error> {
        let api_url = settings
            .prefect
            .api_url
            .as_ref()
            .ok_or_else(|| Error::Usage {
                message: "register needs the Prefect API URL".into(),
                hint: Some(
                    "set PREFECT_API_URL, FLOWSHIP_PREFECT_API_URL or prefect.api_url".into(),
                ),
            })?;
        let client = ctx.prefect(settings, &api_url.value)?;
        let gitlab = gitlab_version(settings);
        Ok(Self {
            files: files::discover(
                &settings
                    .prefect
                    .files
                    .iter()
                    .map(|f| f.value.clone())
                    .collect::<Vec<_>>(),
            )?,
            client,
            image: settings.image.as_ref().map(|i| StepImage {
                repository: i.value.familiar_repository(),
                tag: i.value.tag.clone(),
                digest: i.value.digest.clone(),
            }),
            selection,
            skip_steps,
            default_work_pool: settings.prefect.work_pool.as_ref().map(|p| p.value.clone()),
            pools: Vec::new(),
            create_work_pool: settings
                .prefect
                .create_work_pool
                .as_ref()
                .map(|c| c.value.clone()),
            concurrency: settings.prefect.concurrency.value,
            env: settings.template_env.clone(),
            gitlab,
            pin_image: None,
            strict: settings.prefect.strict.value,
            prune: settings.prefect.prune.value,
            record: None,
            salt: String::new(),
            pull_secret: settings
                .prefect
                .image_pull_secret
                .as_ref()
                .map(|s| s.value.clone()),
            replace_registry_block: settings.prefect.replace_registry_block.value,
            // Only a login configured for this purpose (flowship's or Harbor's variables): a personal
            // `docker login` on a laptop must never become what every worker of the pool pulls with.
            pull_credentials: settings.image.as_ref().and_then(|i| {
                settings
                    .credential(&i.value.registry)
                    .filter(|c| {
                        !matches!(
                            c.password.source,
                            crate::source::Source::DockerConfig { .. }
                        )
                    })
                    .map(|c| PullCredentials {
                        registry: i.value.registry.clone(),
                        username: c.username.value,
                        password: c.password.value,
                    })
            }),
        })
    }
}

/// The pipeline a registration runs in (GitLab CI): its commit gives deployments their `version`.
pub fn gitlab_version(settings: &Settings) -> Option<GitlabVersion> {
    match (&settings.ci.commit_sha, settings.gitlab_ci) {
        (Some(sha), true) => Some(GitlabVersion {
            commit_sha: sha.clone(),
            branch: settings.ci.ref_name.clone(),
            project_url: settings.ci.project_url.clone(),
            project_name: settings.ci.project_name.clone(),
        }),
        _ => None,
    }
}

/// `--all`, or `--name FLOW/DEPLOYMENT` globs; with neither, a file with one deployment means that one.
pub(super) fn select(
    plans: Vec<crate::prefect::project::Plan>,
    selection: &Selection,
) -> Result<Vec<crate::prefect::project::Plan>, Error> {
    let names = match selection {
        Selection::All => return Ok(plans),
        Selection::Default if plans.len() == 1 => return Ok(plans),
        Selection::Default => {
            let names: Vec<String> = plans.iter().map(|p| p.full_name()).collect();
            return Err(usage(
                format!("prefect.yaml has {} deployments; say which", plans.len()),
                &format!(
                    "pass --all, or --name FLOW/DEPLOYMENT (globs) for any of: {}",
                    names.join(", ")
                ),
            ));
        }
        Selection::Names(n) => n,
    };
    let mut out: Vec<crate::prefect::project::Plan> = Vec::new();
    for pattern in names {
        let glob = Glob::new(pattern)
            .map_err(|e| Error::Usage {
                message: format!("--name `{pattern}`: {e}"),
                hint: None,
            })?
            .compile_matcher();
        let hits: Vec<&crate::prefect::project::Plan> = plans
            .iter()
            .filter(|p| glob.is_match(p.full_name()) || glob.is_match(&p.name))
            .collect();
        if hits.is_empty() {
            let names: Vec<String> = plans.iter().map(|p| p.full_name()).collect();
            return Err(usage(
                format!("--name `{pattern}` matches no deployment"),
                &format!("deployments in the file: {}", names.join(", ")),
            ));
        }
        for h in hits {
            if !out.iter().any(|p| p.full_name() == h.full_name()) {
                out.push(h.clone());
            }
        }
    }
    Ok(out)
}
