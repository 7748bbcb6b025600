//! The one place that turns flags, environment, file and CI variables into [`Settings`].

use super::values::{check_url, number, parse_repository, resolve_environment, resolve_trust};
use super::{
    ConfigError, ConfigFile, Env, GitlabSettings, GitopsSettings, HttpSettings, PrefectSettings,
    RegistrySettings, Settings, Source, Sourced,
};
use crate::cli::{Cli, OutputFormat};
use crate::registry::{self, Reference};
use crate::secret::Secret;
use clap::ArgMatches;
use clap::parser::ValueSource;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flag values as clap parsed them, with clap's knowledge of whether each came from the command line or
/// from its `env = ...` variable.
pub(super) struct Flags<'a> {
    top: &'a ArgMatches,
    sub: Option<&'a ArgMatches>,
}

impl Flags<'_> {
    pub(super) fn source(&self, id: &str, flag: &str, env: &str) -> Option<Source> {
        // `value_source` panics for an id the command does not define: ask only once `try_get_raw` found it.
        let lookup = |m: &ArgMatches| {
            m.try_get_raw(id)
                .ok()
                .flatten()
                .and_then(|_| m.value_source(id))
        };
        let vs = self.sub.and_then(lookup).or_else(|| lookup(self.top))?;
        match vs {
            ValueSource::CommandLine => Some(Source::Flag { name: flag.into() }),
            ValueSource::EnvVariable => Some(Source::Env { name: env.into() }),
            _ => None,
        }
    }

    /// The flag's value with its source, if the user gave it (on the command line or through its variable).
    pub(super) fn get(
        &self,
        value: Option<&String>,
        id: &str,
        flag: &str,
        env: &str,
    ) -> Option<Sourced<String>> {
        let v = value?.clone();
        Some(Sourced::new(v, self.source(id, flag, env)?))
    }
}

pub(super) struct Resolver<'a> {
    pub(super) env: &'a Env,
    pub(super) file: ConfigFile,
    pub(super) file_path: Option<PathBuf>,
}

impl Resolver<'_> {
    fn file_value(&self, key: &str, v: Option<&String>) -> Option<Sourced<String>> {
        let path = self.file_path.clone()?;
        v.map(|v| {
            Sourced::new(
                v.clone(),
                Source::File {
                    path,
                    key: key.into(),
                },
            )
        })
    }

    /// flag/env > `<env>_FILE` > file > integration variables, in that order.
    pub(super) fn pick(
        &self,
        flag: Option<Sourced<String>>,
        env: &str,
        file: (&str, Option<&String>),
        integration: &[&str],
    ) -> Result<Option<Sourced<String>>, ConfigError> {
        if flag.is_some() {
            return Ok(flag);
        }
        if let Some(v) = self.env.get(env, false)? {
            return Ok(Some(v));
        }
        if let Some(v) = self.file_value(file.0, file.1) {
            return Ok(Some(v));
        }
        for name in integration {
            if let Some(v) = self.env.get(name, true)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    pub(super) fn secret(
        &self,
        names: &[&str],
        integration: &[&str],
    ) -> Result<Option<Sourced<Secret>>, ConfigError> {
        for n in names {
            if let Some(v) = self.env.get(n, false)? {
                return Ok(Some(v.map(Secret::new)));
            }
        }
        for n in integration {
            if let Some(v) = self.env.get(n, true)? {
                return Ok(Some(v.map(Secret::new)));
            }
        }
        Ok(None)
    }
}

pub fn resolve(cli: &Cli, matches: &ArgMatches, env: &Env) -> Result<Settings, ConfigError> {
    let flags = Flags {
        top: matches,
        sub: matches.subcommand().map(|(_, m)| m),
    };
    let g = &cli.global;

    // The config file: explicit (flag or FLOWSHIP_CONFIG) must exist; ./flowship.yaml is used when present.
    let config_file = match flags.get(
        g.config.as_ref().map(|p| p.display().to_string()).as_ref(),
        "config",
        "--config",
        "FLOWSHIP_CONFIG",
    ) {
        Some(p) => Some(p.map(PathBuf::from)),
        None => Path::new("flowship.yaml")
            .is_file()
            .then(|| Sourced::default_value(PathBuf::from("flowship.yaml"))),
    };
    let file = match &config_file {
        Some(p) => ConfigFile::load(&p.value)?,
        None => ConfigFile::default(),
    };
    let r = Resolver {
        env,
        file,
        file_path: config_file.as_ref().map(|p| p.value.clone()),
    };
    let t = cli.command.targets();
    let bump = match &cli.command {
        crate::cli::Command::Bump(b) => Some(b.as_ref()),
        _ => None,
    };

    let output = match (
        g.output,
        flags.source("output", "--output", "FLOWSHIP_OUTPUT"),
    ) {
        (Some(o), Some(src)) => Sourced::new(o, src),
        _ => Sourced::default_value(OutputFormat::Human),
    };
    let dry_run = match flags.source("dry_run", "--dry-run", "FLOWSHIP_DRY_RUN") {
        Some(src) => Sourced::new(g.dry_run, src),
        None => Sourced::default_value(false),
    };
    let dotenv = flags
        .get(
            g.dotenv.as_ref().map(|p| p.display().to_string()).as_ref(),
            "dotenv",
            "--dotenv",
            "FLOWSHIP_DOTENV",
        )
        .map(|s| s.map(PathBuf::from));
    let verbosity = if g.quiet > 0 {
        -1
    } else {
        g.verbose.min(2) as i8
    };
    let gitlab_ci = env.is_true("GITLAB_CI");
    let color = if env.raw("NO_COLOR").is_some() {
        false
    } else if env.raw("CLICOLOR_FORCE").is_some_and(|v| v != "0")
        || env.raw("FORCE_COLOR").is_some()
        || gitlab_ci
    {
        true
    } else {
        std::io::stderr().is_terminal()
    };

    let trust = resolve_trust(&r, g)?;
    let http = HttpSettings {
        retries: number(
            &r,
            "FLOWSHIP_HTTP_RETRIES",
            "http.retries",
            r.file.http.retries.map(u64::from),
            5,
        )?
        .map(|n| n.min(u64::from(u32::MAX)) as u32),
        timeout: number(
            &r,
            "FLOWSHIP_HTTP_TIMEOUT_SECS",
            "http.timeout_secs",
            r.file.http.timeout_secs,
            30,
        )?
        .map(Duration::from_secs),
    };

    let image = r
        .pick(
            flags.get(t.image.as_ref(), "image", "--image", "FLOWSHIP_IMAGE"),
            "FLOWSHIP_IMAGE",
            ("image.repository", r.file.image.repository.as_ref()),
            &[],
        )?
        .map(|s| parse_repository(s, &r))
        .transpose()?;

    let explicit_user = r.pick(
        flags.get(
            t.registry_username.as_ref(),
            "registry_username",
            "--registry-username",
            "FLOWSHIP_REGISTRY_USERNAME",
        ),
        "FLOWSHIP_REGISTRY_USERNAME",
        ("registry.username", r.file.registry.username.as_ref()),
        &[],
    )?;
    let explicit_password = r.secret(&["FLOWSHIP_REGISTRY_PASSWORD"], &[])?;
    let registry = RegistrySettings {
        credential: match &image {
            Some(img) => registry::credentials::resolve(
                &img.value.registry,
                explicit_user.clone(),
                explicit_password.clone(),
                env,
            )?,
            None => None,
        },
        others: {
            // `promote SRC DST`: the destination's registry gets the explicit credentials; any other host
            // only what Harbor's integration or Docker's config hold for it.
            let mut others = std::collections::BTreeMap::new();
            if let crate::cli::Command::Promote(p) = &cli.command {
                let dst = Reference::parse(&p.destination).ok().map(|r| r.registry);
                for host in [
                    Reference::parse(&p.source).ok().map(|r| r.registry),
                    dst.clone(),
                ]
                .into_iter()
                .flatten()
                {
                    let (u, pw) = if Some(&host) == dst.as_ref() {
                        (explicit_user.clone(), explicit_password.clone())
                    } else {
                        (None, None)
                    };
                    if let Some(c) = registry::credentials::resolve(&host, u, pw, env)? {
                        others.insert(host, c);
                    }
                }
            }
            others
        },
    };

    let environment = resolve_environment(&r, &flags, bump)?;
    let env_section = environment
        .as_ref()
        .and_then(|e| r.file.gitops.environments.get(&e.value));
    let env_key = |field: &str| {
        environment
            .as_ref()
            .map(|e| format!("gitops.environments.{}.{field}", e.value))
            .unwrap_or_default()
    };
    let gitops = GitopsSettings {
        repo: r.pick(
            flags.get(
                t.gitops_repo.as_ref(),
                "gitops_repo",
                "--gitops-repo",
                "FLOWSHIP_GITOPS_REPO",
            ),
            "FLOWSHIP_GITOPS_REPO",
            ("gitops.repo", r.file.gitops.repo.as_ref()),
            &[],
        )?,
        branch: r
            .pick(
                flags.get(
                    t.gitops_branch.as_ref(),
                    "gitops_branch",
                    "--gitops-branch",
                    "FLOWSHIP_GITOPS_BRANCH",
                ),
                "FLOWSHIP_GITOPS_BRANCH",
                ("gitops.branch", r.file.gitops.branch.as_ref()),
                &[],
            )?
            .unwrap_or_else(|| Sourced::default_value("main".into())),
        username: r
            .pick(
                flags.get(
                    t.git_username.as_ref(),
                    "git_username",
                    "--git-username",
                    "FLOWSHIP_GIT_USERNAME",
                ),
                "FLOWSHIP_GIT_USERNAME",
                ("gitops.username", r.file.gitops.username.as_ref()),
                &[],
            )?
            // GitLab wants `oauth2` for OAuth tokens and accepts any name for access tokens.
            .unwrap_or_else(|| Sourced::default_value("oauth2".into())),
        token: r.secret(&["FLOWSHIP_GIT_TOKEN"], &[])?,
        ssh_key: r.secret(&["FLOWSHIP_GIT_SSH_KEY"], &[])?,
        known_hosts: r
            .pick(
                None,
                "FLOWSHIP_GIT_SSH_KNOWN_HOSTS",
                ("gitops.known_hosts", r.file.gitops.known_hosts.as_ref()),
                &[],
            )?
            .map(|s| s.map(PathBuf::from)),
        author_name: r
            .pick(
                None,
                "FLOWSHIP_GIT_AUTHOR_NAME",
                ("gitops.author_name", r.file.gitops.author_name.as_ref()),
                &["GITLAB_USER_NAME"],
            )?
            .unwrap_or_else(|| Sourced::default_value("flowship".into())),
        author_email: r
            .pick(
                None,
                "FLOWSHIP_GIT_AUTHOR_EMAIL",
                ("gitops.author_email", r.file.gitops.author_email.as_ref()),
                &["GITLAB_USER_EMAIL"],
            )?
            .unwrap_or_else(|| Sourced::default_value("flowship@noreply.invalid".into())),
        paths: match env_section.filter(|e| !e.paths.is_empty()) {
            Some(e) => list(
                &r,
                bump.map(|b| b.paths.as_slice()).unwrap_or_default(),
                "--paths",
                &env_key("paths"),
                &e.paths,
                &[],
            ),
            None => list(
                &r,
                bump.map(|b| b.paths.as_slice()).unwrap_or_default(),
                "--paths",
                "gitops.paths",
                &r.file.gitops.paths,
                &["**/*.yaml", "**/*.yml", "**/*.json", "**/Kustomization"],
            ),
        },
        targets: list(
            &r,
            bump.map(|b| b.target_paths.as_slice()).unwrap_or_default(),
            "--target",
            &env_key("targets"),
            env_section
                .map(|e| e.targets.as_slice())
                .unwrap_or_default(),
            &[],
        ),
        commit_message: r.pick(
            flags.get(
                bump.and_then(|b| b.message.as_ref()),
                "message",
                "--message",
                "FLOWSHIP_COMMIT_MESSAGE",
            ),
            "FLOWSHIP_COMMIT_MESSAGE",
            (
                "gitops.commit_message",
                r.file.gitops.commit_message.as_ref(),
            ),
            &[],
        )?,
        monotonic: match (
            bump.and_then(|b| b.monotonic),
            flags.source("monotonic", "--monotonic", "FLOWSHIP_MONOTONIC"),
        ) {
            (Some(m), Some(src)) => Some(Sourced::new(m, src)),
            _ => r
                .file
                .gitops
                .monotonic
                .zip(r.file_path.clone())
                .map(|(m, path)| {
                    Sourced::new(
                        m,
                        Source::File {
                            path,
                            key: "gitops.monotonic".into(),
                        },
                    )
                }),
        },
        policies: list(
            &r,
            bump.map(|b| b.policies.as_slice()).unwrap_or_default(),
            "--policy",
            "gitops.policies",
            &r.file.gitops.policies,
            &[],
        ),
        environment,
    };

    let register = match &cli.command {
        crate::cli::Command::Register(r) => Some(r.as_ref()),
        _ => None,
    };
    let prefect = PrefectSettings {
        file: r
            .pick(
                flags.get(
                    register
                        .and_then(|a| a.file.as_ref())
                        .map(|p| p.display().to_string())
                        .as_ref(),
                    "file",
                    "--file",
                    "FLOWSHIP_PREFECT_FILE",
                ),
                "FLOWSHIP_PREFECT_FILE",
                (
                    "prefect.file",
                    r.file
                        .prefect
                        .file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .as_ref(),
                ),
                &[],
            )?
            .map(|s| s.map(PathBuf::from))
            .unwrap_or_else(|| Sourced::default_value(PathBuf::from("prefect.yaml"))),
        api_url: r
            .pick(
                flags.get(
                    t.prefect_api_url.as_ref(),
                    "prefect_api_url",
                    "--prefect-api-url",
                    "FLOWSHIP_PREFECT_API_URL",
                ),
                "FLOWSHIP_PREFECT_API_URL",
                ("prefect.api_url", r.file.prefect.api_url.as_ref()),
                &["PREFECT_API_URL"],
            )?
            .map(|u| {
                check_url(
                    u,
                    "a Prefect API URL such as http://prefect.example.com:4200/api",
                )
            })
            .transpose()?,
        api_key: r.secret(&[], &["PREFECT_API_KEY"])?,
        auth_string: r.secret(&[], &["PREFECT_API_AUTH_STRING"])?,
        work_pool: r.pick(
            flags.get(
                t.work_pool.as_ref(),
                "work_pool",
                "--work-pool",
                "FLOWSHIP_WORK_POOL",
            ),
            "FLOWSHIP_WORK_POOL",
            ("prefect.work_pool", r.file.prefect.work_pool.as_ref()),
            &[],
        )?,
    };

    let gitlab = GitlabSettings {
        api_url: r
            .pick(
                flags.get(
                    t.gitlab_url.as_ref(),
                    "gitlab_url",
                    "--gitlab-url",
                    "FLOWSHIP_GITLAB_URL",
                ),
                "FLOWSHIP_GITLAB_URL",
                ("gitlab.url", r.file.gitlab.url.as_ref()),
                &["CI_API_V4_URL"],
            )?
            .map(|u| {
                check_url(
                    u,
                    "a GitLab API URL such as https://gitlab.example.com/api/v4",
                )
            })
            .transpose()?,
        project: r.pick(
            None,
            "FLOWSHIP_GITLAB_PROJECT",
            ("gitlab.project", r.file.gitlab.project.as_ref()),
            &[],
        )?,
        token: r.secret(&["FLOWSHIP_GITLAB_TOKEN"], &[])?,
    };

    Ok(Settings {
        config_file,
        output,
        dotenv,
        dry_run,
        verbosity,
        color,
        gitlab_ci,
        log_filter: env.raw("RUST_LOG").map(str::to_string),
        trust,
        http,
        image,
        registry,
        gitops,
        prefect,
        gitlab,
        file_image: r.file.image.clone(),
        template_env: env.vars().clone(),
        source_date: match (
            env.get("SOURCE_DATE_EPOCH", true)?,
            env.raw("CI_COMMIT_TIMESTAMP"),
        ) {
            (Some(s), _) => {
                let n = s
                    .value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::Invalid {
                        origin: s.source.clone(),
                        value: s.value.clone(),
                        problem: "is not seconds since the epoch".into(),
                        hint: None,
                    })?;
                Sourced::new(n, s.source)
            }
            (None, Some(ts)) => match crate::image::time::parse_iso8601(ts) {
                Some(n) => Sourced::new(
                    n,
                    Source::Integration {
                        name: "CI_COMMIT_TIMESTAMP".into(),
                    },
                ),
                None => Sourced::default_value(0),
            },
            (None, None) => Sourced::default_value(0),
        },
        ci: crate::settings::CiContext {
            pipeline_url: env.raw("CI_PIPELINE_URL").map(str::to_string),
            job_url: env.raw("CI_JOB_URL").map(str::to_string),
            commit_sha: env.raw("CI_COMMIT_SHA").map(str::to_string),
            ref_name: env.raw("CI_COMMIT_REF_NAME").map(str::to_string),
            project_url: env.raw("CI_PROJECT_URL").map(str::to_string),
            project_name: env.raw("CI_PROJECT_NAME").map(str::to_string),
            short_sha: env.raw("CI_COMMIT_SHORT_SHA").map(str::to_string),
        },
    })
}

/// A list setting: flags replace the file's list, which replaces the default.
fn list(
    r: &Resolver<'_>,
    flags: &[String],
    flag: &str,
    key: &str,
    file: &[String],
    default: &[&str],
) -> Vec<Sourced<String>> {
    if !flags.is_empty() {
        return flags
            .iter()
            .map(|v| Sourced::new(v.clone(), Source::Flag { name: flag.into() }))
            .collect();
    }
    if let (false, Some(path)) = (file.is_empty(), &r.file_path) {
        return file
            .iter()
            .map(|v| {
                Sourced::new(
                    v.clone(),
                    Source::File {
                        path: path.clone(),
                        key: key.into(),
                    },
                )
            })
            .collect();
    }
    default
        .iter()
        .map(|v| Sourced::default_value(v.to_string()))
        .collect()
}
