//! The one place that turns flags, environment, file and CI variables into [`Settings`]. Every section is
//! resolved from the same [`Layers`], whatever the command: a flag a command does not define is simply not
//! there, and `flowship settings` shows every section exactly as a command would see it.

use super::file::Loaded;
use super::keys as k;
use super::layers::{Flags, Layers};
use super::values::{
    check_url, check_url_userinfo, environment, number, parse_repository, parse_size,
    registry_credentials, secret, source_date, trust,
};
use super::{
    BuildSettings, CiContext, Cluster, ConfigError, Env, GitlabSettings, GitopsSettings,
    HttpSettings, PrefectSettings, Settings, SignSettings, Source, Sourced, UploadSettings,
    VerifySettings,
};
use crate::cli::{Cli, OutputFormat};
use crate::gitops::images::{Markers, Pin};
use crate::gitops::order::Monotonic;
use clap::{ArgMatches, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The run's config file, read once: the selected environment's settings and every other environment's
/// (status across environments, promote between them) are resolved from the same read.
pub struct Config {
    path: Option<Sourced<PathBuf>>,
    file: Loaded,
}

/// Read the config file: explicit (flag or FLOWSHIP_CONFIG) must exist; ./flowship.yaml is used when present.
pub fn load(matches: &ArgMatches, env: &Env) -> Result<Config, ConfigError> {
    let empty = Loaded::default();
    let bare = Layers {
        flags: Flags::new(matches),
        env,
        file: &empty,
        environment: None,
    };
    let path = match bare.string(&k::CONFIG)? {
        Some(p) => Some(p.map(PathBuf::from)),
        None => Path::new("flowship.yaml")
            .is_file()
            .then(|| Sourced::default_value(PathBuf::from("flowship.yaml"))),
    };
    let file = match &path {
        Some(p) => Loaded::load(&p.value)?,
        None => Loaded::default(),
    };
    Ok(Config { path, file })
}

/// The settings of the selected environment (`environment` `None`), or of `environment` instead (its overlay
/// in place of the selected one's): the same flags, variables and file.
pub fn resolve(
    cli: &Cli,
    matches: &ArgMatches,
    env: &Env,
    config: &Config,
    environment: Option<&str>,
) -> Result<Settings, ConfigError> {
    resolve_with(cli, Flags::new(matches), env, config, environment)
}

pub(super) fn resolve_with(
    cli: &Cli,
    flags: Flags<'_>,
    env: &Env,
    config: &Config,
    environment_override: Option<&str>,
) -> Result<Settings, ConfigError> {
    let empty = Loaded::default();
    let bare = Layers {
        flags,
        env,
        file: &empty,
        environment: None,
    };
    let (config_file, file) = (config.path.clone(), &config.file);
    let environments = file.environments();
    let environment = match environment_override {
        Some(e) if environments.iter().any(|k| k == e) => Some(Sourced::new(
            e.to_string(),
            Source::Flag {
                name: "--from-env".into(),
            },
        )),
        Some(e) => {
            return Err(ConfigError::Invalid {
                origin: Source::Flag {
                    name: "--from-env".into(),
                },
                value: e.to_string(),
                problem: "is not an environment of flowship.yaml".into(),
                hint: Some(if environments.is_empty() {
                    "define environments.<name> in flowship.yaml".into()
                } else {
                    format!("known environments: {}", environments.join(", "))
                }),
            });
        }
        None => environment(&bare, env, &environments)?,
    };
    let l = Layers {
        flags: bare.flags,
        env,
        file,
        environment: environment.as_ref().map(|e| e.value.clone()),
    };

    let output = l
        .parsed(
            &k::OUTPUT,
            |s| OutputFormat::from_str(s, true).map_err(|_| "is not human or json".into()),
            "use --output human or --output json",
        )?
        .unwrap_or_else(|| Sourced::default_value(OutputFormat::Human));
    let g = &cli.global;
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

    let (image, handoff) = image(&l)?;
    let mut build = build(&l)?;
    build.cache_dir = match l.string(&k::CACHE_DIR)? {
        Some(d) => Some(d.map(PathBuf::from)),
        None => default_cache_dir(env).map(Sourced::default_value),
    };
    let registry = registry_credentials(&l, cli, image.as_ref(), build.base.as_ref())?;
    let clusters = clusters(file, environment.as_ref().map(|e| e.value.as_str()));

    Ok(Settings {
        config_file,
        environments,
        output,
        dotenv: l.string(&k::DOTENV)?.map(|s| s.map(PathBuf::from)),
        dry_run: l.bool(&k::DRY_RUN)?,
        verbosity,
        color,
        gitlab_ci,
        log_filter: env.raw("RUST_LOG").map(str::to_string),
        trust: trust(&l)?,
        http: HttpSettings {
            retries: number(&l, &k::HTTP_RETRIES, 5)?.map(|n| n.min(u64::from(u32::MAX)) as u32),
            timeout: number(&l, &k::HTTP_TIMEOUT, 30)?.map(Duration::from_secs),
        },
        image,
        handoff,
        registry,
        build,
        upload: upload(&l)?,
        gitops: gitops(&l, &clusters)?,
        prefect: prefect(&l)?,
        gitlab: GitlabSettings {
            api_url: l
                .string(&k::GITLAB_URL)?
                .map(|u| {
                    check_url(
                        u,
                        "a GitLab API URL such as https://gitlab.example.com/api/v4",
                    )
                })
                .transpose()?,
            project: l.string(&k::GITLAB_PROJECT)?,
            token: secret(&l, "gitlab.token", k::GITLAB_TOKEN_VARS)?,
        },
        sign: SignSettings {
            key: secret(&l, "sign.key", k::SIGN_KEY_VARS)?,
            password: secret(&l, "sign.password", k::SIGN_PASSWORD_VARS)?,
            required: l.bool(&k::SIGN)?,
        },
        verify: VerifySettings {
            key: l.string(&k::VERIFY_KEY)?.map(|s| s.map(PathBuf::from)),
            pull: pull_account(&l)?,
        },
        clusters,
        environment,
        plan_key: secret(&l, "plan_key", k::PLAN_KEY_VARS)?,
        template_env: env.vars().clone(),
        source_date: source_date(env)?,
        ci: CiContext {
            pipeline_url: env.raw("CI_PIPELINE_URL").map(str::to_string),
            job_url: env.raw("CI_JOB_URL").map(str::to_string),
            commit_sha: env.raw("CI_COMMIT_SHA").map(str::to_string),
            ref_name: env.raw("CI_COMMIT_REF_NAME").map(str::to_string),
            project_url: env.raw("CI_PROJECT_URL").map(str::to_string),
            project_name: env.raw("CI_PROJECT_NAME").map(str::to_string),
            short_sha: env.raw("CI_COMMIT_SHORT_SHA").map(str::to_string),
            // Who is running this (a hold records it): GitLab's user, else the machine's.
            user_login: ["GITLAB_USER_LOGIN", "GITLAB_USER_NAME", "USER", "LOGNAME"]
                .iter()
                .find_map(|v| env.raw(v))
                .map(str::to_string),
        },
    })
}

fn build(l: &Layers<'_>) -> Result<BuildSettings, ConfigError> {
    let context = l
        .string(&k::CONTEXT)?
        .map(|s| s.map(PathBuf::from))
        .unwrap_or_else(|| Sourced::default_value(PathBuf::from(".")));
    let requirements = match l.string(&k::REQUIREMENTS)? {
        Some(r) => Some(r.map(PathBuf::from)),
        None => {
            let default = context.value.join("requirements.txt");
            default.is_file().then(|| Sourced::default_value(default))
        }
    };
    let mut platforms = l.list(&k::PLATFORMS)?;
    if platforms.is_empty() {
        platforms.push(Sourced::default_value("linux/amd64".into()));
    }
    Ok(BuildSettings {
        base: l.string(&k::BASE)?,
        context,
        requirements,
        workspace: l.string(&k::WORKSPACE)?.map(|s| s.map(PathBuf::from)),
        platforms,
        python_version: l.string(&k::PYTHON_VERSION)?,
        workdir: l.string(&k::WORKDIR)?,
        env: l
            .list(&k::IMAGE_ENV)?
            .into_iter()
            .map(image_env)
            .collect::<Result<_, _>>()?,
        cache_dir: None,
    })
}

/// `$XDG_CACHE_HOME/flowship`, else `$HOME/.cache/flowship` (where uv and pip keep theirs).
fn default_cache_dir(env: &Env) -> Option<PathBuf> {
    let xdg = env.raw("XDG_CACHE_HOME").filter(|d| d.starts_with('/'));
    match xdg {
        Some(d) => Some(PathBuf::from(d).join("flowship")),
        None => env
            .raw("HOME")
            .filter(|h| h.starts_with('/'))
            .map(|h| PathBuf::from(h).join(".cache/flowship")),
    }
}

fn upload(l: &Layers<'_>) -> Result<UploadSettings, ConfigError> {
    let scan_gate = l.parsed(
        &k::SCAN_GATE,
        |s| {
            let s = s.to_ascii_lowercase();
            ["critical", "high", "medium", "low"]
                .contains(&s.as_str())
                .then_some(s)
                .ok_or_else(|| "is not a severity".to_string())
        },
        "use critical, high, medium or low",
    )?;
    Ok(UploadSettings {
        chunk_size: l
            .parsed(
                &k::CHUNK_SIZE,
                parse_size,
                "e.g. 8MiB, 512KiB or a number of bytes",
            )?
            .filter(|c| c.value > 0),
        parallel: number(l, &k::PARALLEL, 4)?.map(|n| n.clamp(1, 64) as usize),
        create_project: l.bool(&k::CREATE_PROJECT)?,
        scan_gate,
        scan_timeout: number(l, &k::SCAN_TIMEOUT, 600)?.map(Duration::from_secs),
    })
}

fn gitops(l: &Layers<'_>, clusters: &[Cluster]) -> Result<GitopsSettings, ConfigError> {
    let mut targets = l.list(&k::TARGETS)?;
    let mut paths = l.list(&k::PATHS)?;
    // An environment's clusters add their targets and paths (one commit for all of them), unless flags or
    // variables name the targets explicitly.
    let explicit = |v: &[Sourced<String>]| {
        v.iter().any(|s| {
            matches!(
                s.source,
                Source::Flag { .. } | Source::Env { .. } | Source::EnvFile { .. }
            )
        })
    };
    if !explicit(&targets) && !explicit(&paths) {
        for c in clusters {
            targets.extend(c.targets.iter().cloned());
            paths.extend(c.paths.iter().cloned());
        }
    }
    if paths.is_empty() {
        paths = ["**/*.yaml", "**/*.yml", "**/*.json", "**/Kustomization"]
            .iter()
            .map(|p| Sourced::default_value(p.to_string()))
            .collect();
    }
    Ok(GitopsSettings {
        repo: l
            .string(&k::GITOPS_REPO)?
            .map(no_committed_token)
            .transpose()?,
        branch: l
            .string(&k::GITOPS_BRANCH)?
            .unwrap_or_else(|| Sourced::default_value("main".into())),
        // GitLab wants `oauth2` for OAuth tokens and accepts any name for access tokens.
        username: l
            .string(&k::GIT_USERNAME)?
            .unwrap_or_else(|| Sourced::default_value("oauth2".into())),
        token: secret(l, "gitops.token", k::GIT_TOKEN_VARS)?,
        ssh_key: secret(l, "gitops.ssh_key", k::GIT_SSH_KEY_VARS)?,
        known_hosts: l.string(&k::KNOWN_HOSTS)?.map(|s| s.map(PathBuf::from)),
        author_name: l
            .string(&k::AUTHOR_NAME)?
            .unwrap_or_else(|| Sourced::default_value("flowship".into())),
        author_email: l
            .string(&k::AUTHOR_EMAIL)?
            .unwrap_or_else(|| Sourced::default_value("flowship@noreply.invalid".into())),
        paths,
        policies: l.list(&k::POLICIES)?,
        targets,
        monotonic: l.parsed(
            &k::MONOTONIC,
            |s| Monotonic::from_str(s, true).map_err(|_| "is not semver or numeric".into()),
            "use semver or numeric",
        )?,
        pin: l
            .parsed(
                &k::PIN,
                |s| Pin::from_str(s, true).map_err(|_| "is not keep or always".into()),
                "use keep (pin what was pinned) or always",
            )?
            .unwrap_or_else(|| Sourced::default_value(Pin::Keep)),
        markers: l
            .parsed(
                &k::MARKERS,
                |s| Markers::from_str(s, true).map_err(|_| "is not any or only".into()),
                "use any, or only (files with $imagepolicy markers: marked fields only)",
            )?
            .unwrap_or_else(|| Sourced::default_value(Markers::Any)),
        new_name: l.string(&k::NEW_NAME)?,
        expect_tag: l.string(&k::EXPECT_TAG)?,
        expect_digest: l.string(&k::EXPECT_DIGEST)?,
        merge_request: l.bool(&k::MERGE_REQUEST)?,
        max_attempts: number(l, &k::MAX_ATTEMPTS, 20)?.map(|n| n.clamp(1, 1000) as u32),
        commit_message: l.string(&k::COMMIT_MESSAGE)?,
    })
}

fn prefect(l: &Layers<'_>) -> Result<PrefectSettings, ConfigError> {
    let mut files: Vec<Sourced<PathBuf>> = l
        .list(&k::PREFECT_FILE)?
        .into_iter()
        .map(|s| s.map(PathBuf::from))
        .collect();
    if files.is_empty() {
        files.push(Sourced::default_value(PathBuf::from("prefect.yaml")));
    }
    // `http://user:password@host/api`: the URL without them, and them as the basic auth string (unless
    // one is given explicitly).
    let (api_url, userinfo) = match l.string(&k::PREFECT_API_URL)? {
        Some(u) => {
            let (u, userinfo) = check_url_userinfo(
                u,
                "a Prefect API URL such as http://prefect.example.com:4200/api",
            )?;
            (Some(u), userinfo)
        }
        None => (None, None),
    };
    Ok(PrefectSettings {
        file: files[0].clone(),
        files,
        api_url,
        api_key: secret(l, "prefect.api_key", k::PREFECT_KEY_VARS)?,
        auth_string: secret(l, "prefect.auth_string", k::PREFECT_AUTH_VARS)?.or(userinfo),
        work_pool: l.string(&k::WORK_POOL)?,
        concurrency: number(l, &k::CONCURRENCY, 8)?.map(|n| n.clamp(1, 256) as usize),
        create_work_pool: l.string(&k::CREATE_WORK_POOL)?,
        strict: l.bool(&k::STRICT)?,
        prune: l.bool(&k::PRUNE)?,
        replace_registry_block: l.bool(&k::REPLACE_REGISTRY_BLOCK)?,
        smoke: l.list(&k::SMOKE)?,
        smoke_timeout: number(l, &k::SMOKE_TIMEOUT, 600)?,
        rollback_on_failure: l.bool(&k::ROLLBACK_ON_FAILURE)?,
        image_pull_secret: l.string(&k::PULL_SECRET)?,
    })
}

/// `environments.E.clusters`, each with its targets, paths and work pool (file values only).
fn clusters(file: &Loaded, environment: Option<&str>) -> Vec<Cluster> {
    let (Some(e), Some(path)) = (environment, &file.path) else {
        return Vec::new();
    };
    let Some(section) = file.typed.environments.get(e) else {
        return Vec::new();
    };
    let src = |key: String| Source::File {
        path: path.clone(),
        key,
    };
    section
        .clusters
        .iter()
        .map(|(name, c)| {
            let key = |k: &str| format!("environments.{e}.clusters.{name}.{k}");
            Cluster {
                name: name.clone(),
                targets: c
                    .targets
                    .iter()
                    .map(|t| Sourced::new(t.clone(), src(key("targets"))))
                    .collect(),
                paths: c
                    .paths
                    .iter()
                    .map(|t| Sourced::new(t.clone(), src(key("paths"))))
                    .collect(),
                work_pool: c
                    .work_pool
                    .clone()
                    .map(|w| Sourced::new(w, src(key("work_pool")))),
            }
        })
        .collect()
}

/// The repository in effect and the handoff (see [`image`]).
type ImageSettings = (
    Option<Sourced<crate::registry::Reference>>,
    Option<Sourced<crate::registry::Reference>>,
);

/// The image repository, and the image a job was handed (`--image`/`FLOWSHIP_IMAGE` naming a digest: a build
/// job's dotenv report reaches every later job). A handoff names *what* to release, not where this
/// environment keeps its images: when the environment's own entry in the file names another repository
/// (prod's project), that stays the repository, and release/promote copy the handed-over digest into it.
fn image(l: &Layers<'_>) -> Result<ImageSettings, ConfigError> {
    let top = l.string(&k::IMAGE)?.map(parse_repository).transpose()?;
    let handoff = top
        .clone()
        .filter(|t| t.value.digest.is_some())
        .filter(|t| {
            matches!(
                t.source,
                Source::Flag { .. } | Source::Env { .. } | Source::EnvFile { .. }
            )
        });
    let own = l
        .environment_file_string(&k::IMAGE)
        .map(parse_repository)
        .transpose()?;
    match (&handoff, own) {
        (Some(h), Some(o)) if o.value.repository_ref() != h.value.repository_ref() => {
            Ok((Some(o), handoff))
        }
        _ => Ok((top, handoff)),
    }
}

/// A token written into a committed `flowship.yaml`'s `gitops.repo` is exit 2: it is in the repository for
/// everyone to read. (From a variable it is taken as the token, and redacted everywhere.)
fn no_committed_token(r: Sourced<String>) -> Result<Sourced<String>, ConfigError> {
    let has_password = url::Url::parse(&r.value)
        .ok()
        .is_some_and(|u| u.password().is_some());
    if has_password && matches!(r.source, crate::source::Source::File { .. }) {
        return Err(ConfigError::Invalid {
            origin: r.source,
            value: crate::secret::redact_url(&r.value),
            problem: "has a token in it, in a file that is committed".into(),
            hint: Some("remove it from the URL and give it in FLOWSHIP_GIT_TOKEN (a masked CI/CD variable)".into()),
        });
    }
    Ok(r)
}

/// The cluster's pull account: a user name and its password, both or neither.
fn pull_account(l: &Layers<'_>) -> Result<Option<crate::registry::Credential>, ConfigError> {
    let username = l.string(&k::PULL_USERNAME)?;
    let password = secret(l, "verify.pull_password", k::PULL_PASSWORD_VARS)?;
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(crate::registry::Credential { username, password })),
        (None, None) => Ok(None),
        (Some(u), None) => Err(ConfigError::Invalid {
            origin: u.source,
            value: u.value,
            problem: "is the cluster's pull account, but no password is set for it".into(),
            hint: Some("set FLOWSHIP_PULL_PASSWORD (a masked CI variable), or verify.pull_password_variable".into()),
        }),
        (None, Some(p)) => Err(ConfigError::Invalid {
            origin: p.source,
            value: "(secret)".into(),
            problem: "is the cluster's pull password, but no pull user name is set".into(),
            hint: Some("set FLOWSHIP_PULL_USERNAME or verify.pull_username (a Harbor robot with pull only)".into()),
        }),
    }
}

/// `KEY=VALUE` of `image.env`: a POSIX name, then anything.
fn image_env(s: Sourced<String>) -> Result<Sourced<(String, String)>, ConfigError> {
    let parsed = s.value.split_once('=').filter(|(k, _)| {
        k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    match parsed {
        Some((k, v)) => Ok(Sourced::new((k.to_string(), v.to_string()), s.source)),
        None => Err(ConfigError::Invalid {
            origin: s.source,
            value: s.value,
            problem: "is not KEY=VALUE with a variable name (letters, digits, `_`)".into(),
            hint: Some("give e.g. PYTHONPATH=/opt/prefect/app/src".into()),
        }),
    }
}
