//! Every setting flowship reads, named once for each layer: its `flowship.yaml` key (also its name in
//! `flowship settings`), its flag, its `FLOWSHIP_*` variable, and the other tools' variables it falls back to.
//! `ALL` lists them once; the README is checked against it (`tests` below: every variable and file key documented,
//! no variable documented that flowship does not read); `tests/it/settings.rs` checks that each `_FILE` works.

use super::layers::Key;

pub const CONFIG: Key = Key::new("config")
    .flag("config", "--config")
    .env("FLOWSHIP_CONFIG");
pub const ENVIRONMENT: Key = Key::new("environment")
    .flag("environment", "--env")
    .env("FLOWSHIP_ENV");
pub const OUTPUT: Key = Key::new("output")
    .flag("output", "--output")
    .env("FLOWSHIP_OUTPUT");
pub const DRY_RUN: Key = Key::new("dry_run")
    .flag("dry_run", "--dry-run")
    .env("FLOWSHIP_DRY_RUN");
pub const DOTENV: Key = Key::new("dotenv")
    .flag("dotenv", "--dotenv")
    .env("FLOWSHIP_DOTENV");

pub const CA_FILES: Key = Key::new("tls.ca_files")
    .flag("ca_files", "--ca-file")
    .env("FLOWSHIP_CA_FILE")
    .integration(&["CI_SERVER_TLS_CA_FILE", "SSL_CERT_FILE"]);
pub const PLAIN_HTTP: Key = Key::new("tls.plain_http")
    .flag("plain_http", "--plain-http")
    .env("FLOWSHIP_PLAIN_HTTP");
pub const HTTP_RETRIES: Key = Key::new("http.retries").env("FLOWSHIP_HTTP_RETRIES");
pub const HTTP_TIMEOUT: Key = Key::new("http.timeout_secs").env("FLOWSHIP_HTTP_TIMEOUT_SECS");

pub const IMAGE: Key = Key::new("image.repository")
    .flag("image", "--image")
    .env("FLOWSHIP_IMAGE");
pub const BASE: Key = Key::new("image.base")
    .flag("base", "--base")
    .env("FLOWSHIP_BASE_IMAGE");
pub const CONTEXT: Key = Key::new("image.context")
    .flag("context", "--context")
    .env("FLOWSHIP_CONTEXT");
pub const REQUIREMENTS: Key = Key::new("image.requirements")
    .flag("requirements", "--requirements")
    .env("FLOWSHIP_REQUIREMENTS");
/// Environment variables set in the image (`KEY=VALUE`, repeatable): a monorepo's `PYTHONPATH`, a flow's
/// settings.
pub const IMAGE_ENV: Key = Key::new("image.env")
    .flag("image_env", "--image-env")
    .env("FLOWSHIP_IMAGE_ENV");
pub const WORKSPACE: Key = Key::new("image.workspace")
    .flag("workspace", "--workspace")
    .env("FLOWSHIP_WORKSPACE");
pub const PLATFORMS: Key = Key::new("image.platforms")
    .flag("platforms", "--platform")
    .env("FLOWSHIP_PLATFORMS");
pub const PYTHON_VERSION: Key = Key::new("image.python_version")
    .flag("python_version", "--python-version")
    .env("FLOWSHIP_PYTHON_VERSION");
pub const WORKDIR: Key = Key::new("image.workdir")
    .flag("workdir", "--workdir")
    .env("FLOWSHIP_WORKDIR");

/// The build machine's cache of local packages' wheels and installed files (default
/// `$XDG_CACHE_HOME/flowship`, else `~/.cache/flowship`).
pub const CACHE_DIR: Key = Key::new("cache.dir").env("FLOWSHIP_CACHE_DIR");

pub const REGISTRY_USERNAME: Key = Key::new("registry.username")
    .flag("registry_username", "--registry-username")
    .env("FLOWSHIP_REGISTRY_USERNAME");

pub const CHUNK_SIZE: Key = Key::new("upload.chunk_size")
    .flag("chunk_size", "--chunk-size")
    .env("FLOWSHIP_CHUNK_SIZE");
pub const PARALLEL: Key = Key::new("upload.parallel")
    .flag("parallel", "--parallel")
    .env("FLOWSHIP_PARALLEL");
pub const CREATE_PROJECT: Key = Key::new("harbor.create_project")
    .flag("create_project", "--create-project")
    .env("FLOWSHIP_CREATE_PROJECT");
pub const SCAN_GATE: Key = Key::new("harbor.scan_gate")
    .flag("scan_gate", "--scan-gate")
    .env("FLOWSHIP_SCAN_GATE");
pub const SCAN_TIMEOUT: Key = Key::new("harbor.scan_timeout_secs")
    .flag("scan_timeout", "--scan-timeout")
    .env("FLOWSHIP_SCAN_TIMEOUT");

pub const GITOPS_REPO: Key = Key::new("gitops.repo")
    .flag("gitops_repo", "--gitops-repo")
    .env("FLOWSHIP_GITOPS_REPO");
pub const GITOPS_BRANCH: Key = Key::new("gitops.branch")
    .flag("gitops_branch", "--gitops-branch")
    .env("FLOWSHIP_GITOPS_BRANCH");
pub const GIT_USERNAME: Key = Key::new("gitops.username")
    .flag("git_username", "--git-username")
    .env("FLOWSHIP_GIT_USERNAME");
pub const KNOWN_HOSTS: Key = Key::new("gitops.known_hosts").env("FLOWSHIP_GIT_SSH_KNOWN_HOSTS");
pub const AUTHOR_NAME: Key = Key::new("gitops.author_name")
    .env("FLOWSHIP_GIT_AUTHOR_NAME")
    .integration(&["GITLAB_USER_NAME"]);
pub const AUTHOR_EMAIL: Key = Key::new("gitops.author_email")
    .env("FLOWSHIP_GIT_AUTHOR_EMAIL")
    .integration(&["GITLAB_USER_EMAIL"]);
pub const PATHS: Key = Key::new("gitops.paths")
    .flag("paths", "--paths")
    .env("FLOWSHIP_GITOPS_PATHS");
pub const TARGETS: Key = Key::new("gitops.targets")
    .flag("target_paths", "--target")
    .env("FLOWSHIP_GITOPS_TARGETS");
pub const POLICIES: Key = Key::new("gitops.policies")
    .flag("policies", "--policy")
    .env("FLOWSHIP_GITOPS_POLICIES");
pub const MONOTONIC: Key = Key::new("gitops.monotonic")
    .flag("monotonic", "--monotonic")
    .env("FLOWSHIP_MONOTONIC");
pub const PIN: Key = Key::new("gitops.pin")
    .flag("pin", "--pin")
    .env("FLOWSHIP_GITOPS_PIN");
pub const MARKERS: Key = Key::new("gitops.markers")
    .flag("markers", "--markers")
    .env("FLOWSHIP_GITOPS_MARKERS");
/// Per-run values of one bump (no `flowship.yaml` key: a file that sets them would rename or compare on
/// every run).
pub const NEW_NAME: Key = Key::new("bump.new_name")
    .flag("new_name", "--new-name")
    .env("FLOWSHIP_NEW_NAME");
pub const EXPECT_TAG: Key = Key::new("bump.expect_tag")
    .flag("expect_tag", "--expect-tag")
    .env("FLOWSHIP_EXPECT_TAG");
pub const EXPECT_DIGEST: Key = Key::new("bump.expect_digest")
    .flag("expect_digest", "--expect-digest")
    .env("FLOWSHIP_EXPECT_DIGEST");
pub const MERGE_REQUEST: Key = Key::new("gitops.merge_request")
    .flag("merge_request", "--merge-request")
    .env("FLOWSHIP_MERGE_REQUEST");
pub const MAX_ATTEMPTS: Key = Key::new("gitops.max_attempts")
    .flag("max_attempts", "--max-attempts")
    .env("FLOWSHIP_MAX_ATTEMPTS");
pub const COMMIT_MESSAGE: Key = Key::new("gitops.commit_message")
    .flag("message", "--message")
    .env("FLOWSHIP_COMMIT_MESSAGE");

pub const PREFECT_FILE: Key = Key::new("prefect.file")
    .flag("file", "--file")
    .env("FLOWSHIP_PREFECT_FILE");
pub const PREFECT_API_URL: Key = Key::new("prefect.api_url")
    .flag("prefect_api_url", "--prefect-api-url")
    .env("FLOWSHIP_PREFECT_API_URL")
    .integration(&["PREFECT_API_URL"]);
pub const WORK_POOL: Key = Key::new("prefect.work_pool")
    .flag("work_pool", "--work-pool")
    .env("FLOWSHIP_WORK_POOL");
pub const CONCURRENCY: Key = Key::new("prefect.concurrency")
    .flag("concurrency", "--concurrency")
    .env("FLOWSHIP_PREFECT_CONCURRENCY");
pub const PULL_SECRET: Key = Key::new("prefect.image_pull_secret")
    .flag("image_pull_secret", "--image-pull-secret")
    .env("FLOWSHIP_IMAGE_PULL_SECRET");
pub const SMOKE: Key = Key::new("prefect.smoke")
    .flag("smoke", "--smoke")
    .env("FLOWSHIP_SMOKE");
pub const SMOKE_TIMEOUT: Key = Key::new("prefect.smoke_timeout")
    .flag("smoke_timeout", "--smoke-timeout")
    .env("FLOWSHIP_SMOKE_TIMEOUT");
pub const ROLLBACK_ON_FAILURE: Key = Key::new("prefect.rollback_on_failure")
    .flag("rollback_on_failure", "--rollback-on-failure")
    .env("FLOWSHIP_ROLLBACK_ON_FAILURE");
pub const REPLACE_REGISTRY_BLOCK: Key = Key::new("prefect.replace_registry_block")
    .flag("replace_registry_block", "--replace-registry-block")
    .env("FLOWSHIP_REPLACE_REGISTRY_BLOCK");
pub const PRUNE: Key = Key::new("prefect.prune")
    .flag("prune", "--prune")
    .env("FLOWSHIP_PRUNE");
pub const STRICT: Key = Key::new("prefect.strict")
    .flag("strict", "--strict")
    .env("FLOWSHIP_STRICT");
pub const CREATE_WORK_POOL: Key = Key::new("prefect.create_work_pool")
    .flag("create_work_pool", "--create-work-pool")
    .env("FLOWSHIP_CREATE_WORK_POOL");

/// Sign what is pushed (issue 20): asked for by `--sign` / `sign.required`, or by a key being configured.
pub const SIGN: Key = Key::new("sign.required")
    .flag("sign", "--sign")
    .env("FLOWSHIP_SIGN");
/// The public key (PEM file) an environment's releases must be signed with; `verify --key`.
pub const VERIFY_KEY: Key = Key::new("verify.key")
    .flag("verify_key", "--key")
    .env("FLOWSHIP_VERIFY_KEY");

/// The account the cluster pulls with (a Harbor robot with pull only), for the pull proof before pinning; its
/// password only from `FLOWSHIP_PULL_PASSWORD` (or `verify.pull_password_variable`).
pub const PULL_USERNAME: Key = Key::new("verify.pull_username").env("FLOWSHIP_PULL_USERNAME");
pub const PULL_PASSWORD_VARS: &[&str] = &["FLOWSHIP_PULL_PASSWORD"];

pub const GITLAB_URL: Key = Key::new("gitlab.url")
    .flag("gitlab_url", "--gitlab-url")
    .env("FLOWSHIP_GITLAB_URL")
    .integration(&["CI_API_V4_URL"]);
pub const GITLAB_PROJECT: Key = Key::new("gitlab.project").env("FLOWSHIP_GITLAB_PROJECT");

/// The variables a secret is read from when the file names none (`<key>_variable`).
pub const REGISTRY_PASSWORD_VARS: &[&str] = &["FLOWSHIP_REGISTRY_PASSWORD"];
pub const GIT_TOKEN_VARS: &[&str] = &["FLOWSHIP_GIT_TOKEN"];
pub const GIT_SSH_KEY_VARS: &[&str] = &["FLOWSHIP_GIT_SSH_KEY"];
pub const GITLAB_TOKEN_VARS: &[&str] = &["FLOWSHIP_GITLAB_TOKEN"];
pub const PREFECT_AUTH_VARS: &[&str] = &["PREFECT_API_AUTH_STRING"];
pub const PREFECT_KEY_VARS: &[&str] = &["PREFECT_API_KEY"];
/// The signing key (PEM; `_FILE` names a key file) and its password (cosign's own variable too).
pub const SIGN_KEY_VARS: &[&str] = &["FLOWSHIP_SIGN_KEY"];
/// The HMAC key of saved plans.
pub const PLAN_KEY_VARS: &[&str] = &["FLOWSHIP_PLAN_KEY"];
pub const SIGN_PASSWORD_VARS: &[&str] = &["FLOWSHIP_SIGN_PASSWORD", "COSIGN_PASSWORD"];

/// Every setting, once: what the README's tables, `flowship settings` and the tests are checked against.
#[cfg(test)]
pub const ALL: &[Key] = &[
    CONFIG,
    ENVIRONMENT,
    OUTPUT,
    DRY_RUN,
    DOTENV,
    CA_FILES,
    PLAIN_HTTP,
    HTTP_RETRIES,
    HTTP_TIMEOUT,
    IMAGE,
    BASE,
    CONTEXT,
    REQUIREMENTS,
    WORKSPACE,
    IMAGE_ENV,
    PLATFORMS,
    PYTHON_VERSION,
    WORKDIR,
    CACHE_DIR,
    REGISTRY_USERNAME,
    CHUNK_SIZE,
    PARALLEL,
    CREATE_PROJECT,
    SCAN_GATE,
    SCAN_TIMEOUT,
    GITOPS_REPO,
    GITOPS_BRANCH,
    GIT_USERNAME,
    KNOWN_HOSTS,
    AUTHOR_NAME,
    AUTHOR_EMAIL,
    PATHS,
    TARGETS,
    POLICIES,
    MONOTONIC,
    PIN,
    MARKERS,
    NEW_NAME,
    EXPECT_TAG,
    EXPECT_DIGEST,
    MERGE_REQUEST,
    MAX_ATTEMPTS,
    COMMIT_MESSAGE,
    PREFECT_FILE,
    PREFECT_API_URL,
    WORK_POOL,
    CONCURRENCY,
    PULL_SECRET,
    SMOKE,
    SMOKE_TIMEOUT,
    ROLLBACK_ON_FAILURE,
    REPLACE_REGISTRY_BLOCK,
    PRUNE,
    STRICT,
    CREATE_WORK_POOL,
    SIGN,
    VERIFY_KEY,
    PULL_USERNAME,
    GITLAB_URL,
    GITLAB_PROJECT,
];

/// `FLOWSHIP_*` names that are not settings: what flowship writes (the dotenv report for later jobs), and the
/// test harness's and CI scripts' own.
#[cfg(test)]
pub const OTHER_VARS: &[&str] = &[
    "FLOWSHIP_IMAGE_DIGEST",
    "FLOWSHIP_IMAGE_TAG",
    "FLOWSHIP_GITOPS_COMMIT",
    "FLOWSHIP_ENVIRONMENT",
    "FLOWSHIP_COMMIT",
    // ci/image's own: the base of flowship's `-python` image.
    "FLOWSHIP_PYTHON_BASE",
];

/// Every variable a secret is read from by default.
#[cfg(test)]
pub const SECRET_VARS: &[&[&str]] = &[
    PULL_PASSWORD_VARS,
    REGISTRY_PASSWORD_VARS,
    GIT_TOKEN_VARS,
    GIT_SSH_KEY_VARS,
    GITLAB_TOKEN_VARS,
    PREFECT_AUTH_VARS,
    PREFECT_KEY_VARS,
    SIGN_KEY_VARS,
    SIGN_PASSWORD_VARS,
    PLAN_KEY_VARS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_names_every_way_to_set_a_key() {
        assert_eq!(
            IMAGE.where_set("REPO"),
            "--image REPO, FLOWSHIP_IMAGE or image.repository"
        );
        assert_eq!(
            HTTP_TIMEOUT.where_set("S"),
            "FLOWSHIP_HTTP_TIMEOUT_SECS or http.timeout_secs"
        );
    }

    fn readme() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
    }

    /// Every setting's variable and every secret's variable is documented in the README; a key with a file
    /// name is documented under it (the README's tables are checked against this table, not written twice).
    #[test]
    fn the_readme_documents_every_setting() {
        let text = readme();
        let mut missing = Vec::new();
        for k in ALL {
            for v in k.env.iter().chain(k.integration) {
                if !text.contains(&format!("`{v}`"))
                    && !text.contains(&format!("`{v}="))
                    && !text.contains(v)
                {
                    missing.push(format!("{} (variable of `{}`)", v, k.name));
                }
            }
            // `bump.*` are flags and variables only (a file would make every bump expect the same value).
            if k.name.contains('.') && !k.name.starts_with("bump.") && !text.contains(k.name) {
                missing.push(format!("`{}` (file key)", k.name));
            }
        }
        for vars in SECRET_VARS {
            for v in *vars {
                if !text.contains(v) {
                    missing.push(format!("{v} (secret)"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "README.md does not document: {}",
            missing.join(", ")
        );
    }

    /// Every `FLOWSHIP_*` variable the README names is one flowship reads: no stale documentation.
    #[test]
    fn every_variable_the_readme_names_exists() {
        let text = readme();
        let known: Vec<&str> = ALL
            .iter()
            .flat_map(|k| k.env.iter().copied().chain(k.integration.iter().copied()))
            .chain(SECRET_VARS.iter().flat_map(|v| v.iter().copied()))
            .collect();
        // Whole names only: `FLOWSHIP_PREFECT_*` and `FLOWSHIP_REGISTRY_USERNAME/_PASSWORD` are prose.
        let re = regex::Regex::new(r"FLOWSHIP_[A-Z0-9_]*[A-Z0-9][_*/]?").unwrap();
        let mut stale: Vec<String> = re
            .find_iter(&text)
            .map(|m| m.as_str())
            .filter(|v| !v.ends_with(['_', '*', '/']) && !v.starts_with("FLOWSHIP_IT_"))
            .filter(|v| {
                let base = v.strip_suffix("_FILE").unwrap_or(v);
                ![*v, base]
                    .iter()
                    .any(|n| known.contains(n) || OTHER_VARS.contains(n))
            })
            .map(String::from)
            .collect();
        stale.sort();
        stale.dedup();
        assert!(
            stale.is_empty(),
            "README.md names variables flowship does not read: {}",
            stale.join(", ")
        );
    }
}
