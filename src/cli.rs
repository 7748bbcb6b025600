//! Command-line types (clap derive). Nothing here decides anything: `settings` resolves these together with
//! the environment and `flowship.yaml` into one `Settings` value that the commands receive.
//!
//! Secrets have no flags on purpose: a flag's value is visible to every user of the machine in `ps`. They come
//! from variables or `*_FILE` files (see `settings`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FLOWSHIP_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "flowship",
    version = VERSION,
    about = "Build, push, bump and register Prefect flow images from GitLab CI: one binary, no daemon, no Python.",
    after_help = "Exit codes: 0 success (also when there was nothing to do), 1 an operation failed, \
                  2 bad usage, config or input (nothing was written), 3 a policy refused the release, \
                  4 `status` found drift."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./flowship.yaml when present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Plan only: nothing is written anywhere.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// `json` prints one JSON document on stdout.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Write a GitLab dotenv report (FLOWSHIP_IMAGE*, FLOWSHIP_GITOPS_COMMIT) for later jobs.
    #[arg(long, global = true, value_name = "FILE")]
    pub dotenv: Option<PathBuf>,
    /// More narration on stderr (-v debug, -vv trace; RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less narration: errors only.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Extra CA certificate(s) to trust, PEM (repeatable; also FLOWSHIP_CA_FILE, CI_SERVER_TLS_CA_FILE, SSL_CERT_FILE).
    #[arg(long = "ca-file", global = true, value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Use plain HTTP for this registry or server (repeatable; also FLOWSHIP_PLAIN_HTTP, comma-separated).
    /// Plain HTTP is never used for any other host.
    #[arg(long = "plain-http", global = true, value_name = "HOST:PORT")]
    pub plain_http: Vec<String>,
    /// The environment of flowship.yaml (`environments.ENV`) whose settings apply (also FLOWSHIP_ENV)
    /// [default: CI_ENVIRONMENT_NAME when the file defines it].
    #[arg(long = "env", global = true, value_name = "ENV")]
    pub environment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a flow image without a daemon (base image + dependency layer + code layer) and push it.
    Build(Box<BuildArgs>),
    /// Push an image built elsewhere (an OCI layout from buildah/podman/skopeo/umoci) to the registry.
    Push(Box<PushArgs>),
    /// Copy or retag an image by digest, without rebuilding: same repository, another project or registry.
    Promote(Box<PromoteArgs>),
    /// Set an image's tag and/or digest in the GitOps repo, byte-exact; commit and push safely.
    Bump(Box<BumpArgs>),
    /// Create or update Prefect deployments from prefect.yaml through the REST API, without Python.
    Register(Box<RegisterArgs>),
    /// Build → push by digest → scan gate → tag → bump the environment's GitOps targets → register its
    /// deployments, as one plan made before the first write; resumable and idempotent.
    Release(Box<ReleaseArgs>),
    /// What each environment runs: GitOps pins vs the registry vs Prefect's deployments, and any drift
    /// (exit 4 on drift).
    Status(Box<StatusArgs>),
    /// Re-pin an environment to an earlier image from its GitOps history, re-register its deployments, and
    /// hold it there until the hold is lifted.
    Rollback(Box<RollbackArgs>),

    /// Check config, credentials and reachability of the registry, the GitOps repo and the Prefect API.
    Doctor(DoctorArgs),
    /// Print the resolved settings and where each value came from (secrets redacted).
    Settings(SettingsArgs),
    /// Check an image's cosign signature (by --key) and its provenance: exit 0 when both hold, 3 when not.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Registry user name for the image's registry (a consumer's pull login; also FLOWSHIP_REGISTRY_USERNAME).
    #[arg(long, value_name = "USER")]
    pub registry_username: Option<String>,
    /// The image: `registry/repo@sha256:...` (a tag is resolved to its digest first).
    #[arg(value_name = "IMAGE@DIGEST", id = "reference")]
    pub reference: String,
    /// The public key (PEM, e.g. cosign.pub) the signature must verify with [default: verify.key].
    #[arg(long = "key", id = "verify_key", value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// Also rebuild the image from this clean checkout of the commit its provenance records (nothing is
    /// pushed) and compare the digests: exit 3 when they differ.
    #[arg(long, value_name = "CHECKOUT")]
    pub rebuild: Option<PathBuf>,
}

/// How blobs go over the wire.
#[derive(Debug, Args, Clone)]
pub struct UploadArgs {
    /// Upload in chunks of this size (e.g. `8MiB`) for proxies that cap request bodies (Harbor behind
    /// nginx/ingress); default one streamed request per blob.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub chunk_size: Option<u64>,
    /// Blobs uploaded at once.
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Harbor: create the project when it does not exist (needs project-creation rights).
    #[arg(long)]
    pub create_project: bool,
    /// Harbor: scan the pushed image and refuse the release (exit 3) at this severity or above.
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low"])]
    pub scan_gate: Option<String>,
    /// Harbor: how long to wait for the scan.
    #[arg(long, value_name = "SECONDS")]
    pub scan_timeout: Option<u64>,
    /// Sign the pushed image in cosign's format, and fail without a key (FLOWSHIP_SIGN_KEY or
    /// FLOWSHIP_SIGN_KEY_FILE; a configured key signs without this flag).
    #[arg(long)]
    pub sign: bool,
}

/// `1048576`, `512KiB`, `8MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("has an unknown size unit `{other}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// What goes into a built image (build, release).
#[derive(Debug, Args)]
pub struct BuildFlags {
    /// Base image with Python, e.g. `python:3.12-slim` or `harbor.example.com/base/python:3.12`.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// The flow project's directory [default: image.context, else .].
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Python requirements [default: image.requirements, else CONTEXT/requirements.txt when present].
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
    /// The uv workspace root (where uv.lock is) of a member context [default: image.workspace, else found
    /// above the context].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Target platforms, comma-separated or repeated [default: linux/amd64].
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// The base's Python version for wheels (`3.12`) [default: the base's PYTHON_VERSION].
    #[arg(long, value_name = "X.Y")]
    pub python_version: Option<String>,
    /// Where the code goes in the image [default: /opt/prefect/<context directory name>].
    #[arg(long, value_name = "PATH")]
    pub workdir: Option<String>,
    /// An environment variable of the image, `KEY=VALUE` (repeatable), e.g. `PYTHONPATH=/opt/prefect/app/src`.
    #[arg(long = "image-env", value_name = "KEY=VALUE")]
    pub image_env: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Tag to push (repeatable) [default: CI_COMMIT_SHORT_SHA].
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Build only; with --oci-layout, write the image there instead of pushing.
    #[arg(long)]
    pub no_push: bool,
    /// Write the image into this OCI layout directory.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Build flowship's own image instead of a flow's: this (static) binary, a CA bundle, /tmp and a non-root
    /// user, from scratch, or on --base (e.g. a Python image for build jobs); with its SBOM attached.
    #[arg(long, conflicts_with_all = ["context", "requirements", "workspace", "platforms", "python_version", "workdir", "image_env"])]
    pub self_image: bool,
    /// With --self-image: one more file, `FILE:/PATH/IN/IMAGE` (repeatable), e.g. a shell or uv.
    #[arg(long = "add", value_name = "FILE:PATH", requires = "self_image")]
    pub add: Vec<String>,
    #[command(flatten)]
    pub upload: UploadArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// What to push: `oci-layout:DIR[:TAG]` or `docker-archive:FILE[:TAG]` (docker/podman save).
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// Tag to push (repeatable) [default: the tag in the source].
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub upload: UploadArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// The image to promote: `registry/repo:tag` or `registry/repo@sha256:...`.
    #[arg(value_name = "SRC", required_unless_present = "from_env")]
    pub source: Option<String>,
    /// Where to: `registry/repo:tag` (the same repository retags; another copies by digest).
    #[arg(value_name = "DST", required_unless_present = "from_env")]
    pub destination: Option<String>,
    /// Promote between environments: pin --env to exactly the digest this environment's GitOps branch pins
    /// (no rebuild, no tag lookup), copy it into --env's repository when that differs, and register
    /// --env's deployments.
    #[arg(long, value_name = "ENV", conflicts_with_all = ["source", "destination"])]
    pub from_env: Option<String>,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub bump: BumpFlags,
    #[command(flatten)]
    pub register: RegisterFlags,
}

/// Where flowship's outside systems are. Shared by every command that talks to them.
#[derive(Debug, Args, Default)]
pub struct TargetArgs {
    /// Image repository, `registry/project/name` without tag (Harbor: `harbor.example.com/flows/etl`).
    #[arg(long, value_name = "REPO")]
    pub image: Option<String>,
    /// Registry user name (Harbor robot accounts: `robot$project+name`; prefer FLOWSHIP_REGISTRY_USERNAME_FILE).
    #[arg(long, value_name = "USER")]
    pub registry_username: Option<String>,
    /// GitOps repository URL (https://, ssh://, git@host:path, git://, or a local path).
    #[arg(long, visible_alias = "repo", value_name = "URL")]
    pub gitops_repo: Option<String>,
    /// GitOps branch [default: main].
    #[arg(long, visible_alias = "branch", value_name = "BRANCH")]
    pub gitops_branch: Option<String>,
    /// User name sent with FLOWSHIP_GIT_TOKEN over HTTPS [default: oauth2].
    #[arg(long, value_name = "USER")]
    pub git_username: Option<String>,
    /// Prefect API URL (self-hosted `http://host:4200/api`, or a Prefect Cloud workspace URL).
    #[arg(long, value_name = "URL")]
    pub prefect_api_url: Option<String>,
    /// Prefect work pool the deployments run in.
    #[arg(long, value_name = "NAME")]
    pub work_pool: Option<String>,
    /// GitLab API base URL [default: CI_API_V4_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
}

#[derive(Debug, Args)]
pub struct BumpArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// New tag [default: the tag of --image / FLOWSHIP_IMAGE when it has one].
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// New digest, `sha256:...` [default: the digest of --image / FLOWSHIP_IMAGE].
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    /// Files that may be edited, as globs from the repository root (repeatable)
    /// [default: gitops.paths, else every *.yaml, *.yml, *.json and Kustomization].
    #[arg(long = "paths", value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Flux image policy (`namespace:name`) whose `$imagepolicy` markers stand for --image (repeatable).
    #[arg(long = "policy", value_name = "NS:NAME")]
    pub policies: Vec<String>,
    /// Explicit target `FILE:YAML.PATH` (repeatable), e.g.
    /// `apps/prod/worker.yaml:spec.values.worker.image.prefectTag`. Only these are edited.
    #[arg(long = "target", value_name = "FILE:PATH")]
    pub target_paths: Vec<String>,
    /// Rename: references to --image move to this repository (`newName`, `repository`, image strings).
    #[arg(long, value_name = "REPO")]
    pub new_name: Option<String>,
    /// Compare-and-set: refuse (exit 3, nothing written) unless every reference holds this tag (or already
    /// the new one).
    #[arg(long, value_name = "TAG")]
    pub expect_tag: Option<String>,
    /// Compare-and-set on the digest, likewise.
    #[arg(long, value_name = "DIGEST")]
    pub expect_digest: Option<String>,
    #[command(flatten)]
    pub bump: BumpFlags,
}

/// How a GitOps edit is committed and pushed (bump, release, promote, rollback).
#[derive(Debug, Args)]
pub struct BumpFlags {
    /// Refuse (exit 3) to move a tag backwards relative to what the branch has now.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub monotonic: Option<crate::gitops::order::Monotonic>,
    /// Which references take a new digest: `keep` pins what was pinned (`tag@digest`, a `digest` field) and
    /// keeps tag-only references tag-only; `always` pins every reference [default: keep].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub pin: Option<crate::gitops::images::Pin>,
    /// `only`: in a file with Flux `$imagepolicy` markers, edit only the marked fields, as Flux image
    /// automation does [default: any].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub markers: Option<crate::gitops::images::Markers>,
    /// Push to a work branch and open a merge request into the branch instead of pushing to it: through the
    /// GitLab API when FLOWSHIP_GITLAB_TOKEN is set (an open one is reused), else with GitLab push options.
    #[arg(long)]
    pub merge_request: bool,
    /// Work branch for --merge-request [default: flowship/<image name>-<tag>].
    #[arg(long, value_name = "BRANCH")]
    pub mr_branch: Option<String>,
    /// Commit message template: {image} {repository} {tag} {digest} {changes} {pipeline_url} {job_url}.
    #[arg(long, value_name = "TEMPLATE")]
    pub message: Option<String>,
    /// Git push option sent with the push (repeatable), e.g. `ci.skip`.
    #[arg(long = "push-option", value_name = "OPTION")]
    pub push_options: Vec<String>,
    /// Rejected pushes (someone else pushed first) retried after fetching and re-applying the edit.
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Register every deployment of the file.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Register the deployments matching FLOW/DEPLOYMENT (repeatable; globs, e.g. `etl/*`).
    #[arg(long = "name", value_name = "FLOW/DEPLOYMENT")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub register: RegisterFlags,
}

/// How deployments are registered (register, release, promote, rollback).
#[derive(Debug, Args)]
pub struct RegisterFlags {
    /// Prefect's project file [default: prefect.file, else ./prefect.yaml]. Repeatable, and a directory
    /// stands for every prefect.yaml under it (a monorepo): one plan, one summary. Entrypoints resolve
    /// against the working directory, as with `prefect deploy --prefect-file`.
    #[arg(long = "file", value_name = "FILE")]
    pub file: Vec<std::path::PathBuf>,
    /// Skip a build/push/pull step flowship cannot run, by its name (repeatable), e.g.
    /// `prefect.deployments.steps.run_shell_script`.
    #[arg(long = "skip-step", value_name = "STEP")]
    pub skip_steps: Vec<String>,
    /// Create missing work pools of this type (kubernetes, docker, process, ...) with the server's default
    /// base job template.
    #[arg(long, value_name = "TYPE")]
    pub create_work_pool: Option<String>,
    /// Deployments registered at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// The Kubernetes secret kubernetes work pools pull images with: set as `imagePullSecrets` of pools
    /// flowship creates, and added to existing ones.
    #[arg(long, value_name = "SECRET")]
    pub image_pull_secret: Option<String>,
    /// Treat warnings about prefect.yaml (a parameter the flow does not take, a deployment named twice,
    /// keys Prefect 3 ignores) as errors: exit 2, nothing written.
    #[arg(long)]
    pub strict: bool,
    /// Delete the deployments flowship registered for these projects that their files no longer name
    /// (planned and shown like every other change; needs every deployment of the files, i.e. no --name).
    #[arg(long)]
    pub prune: bool,
    /// Replace a work pool's registry-credentials block that holds another user's login (the pipeline's
    /// pull login replacing a personal one, or the other way round).
    #[arg(long)]
    pub replace_registry_block: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Tag to push (repeatable) [default: the tag of FLOWSHIP_IMAGE, else CI_COMMIT_SHORT_SHA].
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub build: BuildFlags,
    #[command(flatten)]
    pub upload: UploadArgs,
    #[command(flatten)]
    pub bump: BumpFlags,
    #[command(flatten)]
    pub register: RegisterFlags,
    /// Save the plan to FILE (JSON, no secrets) for `release --plan FILE` to apply exactly.
    #[arg(long, value_name = "FILE", conflicts_with = "plan")]
    pub plan_out: Option<PathBuf>,
    /// Apply exactly this saved plan: the same digest, the same edits (each a compare-and-swap on the value
    /// the plan saw), the same payloads; refused when anything changed under it.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Refuse a saved plan older than this (`30m`, `24h`, `7d`) [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub plan_max_age: Option<u64>,
    /// Release into a held environment, lifting its hold in the same commit.
    #[arg(long)]
    pub lift_hold: bool,
    /// After registering, run this deployment once (`flow/name` or `name`, optionally `=PARAMS_JSON`;
    /// repeatable) and wait for it to finish: a failed run fails the release (exit 1).
    #[arg(long = "smoke", value_name = "DEPLOYMENT[=PARAMS_JSON]")]
    pub smoke: Vec<String>,
    /// Seconds a smoke run may take [default: 600].
    #[arg(long, value_name = "SECONDS")]
    pub smoke_timeout: Option<u64>,
    /// When a smoke run fails, roll the environment back to the previous release and hold it.
    #[arg(long)]
    pub rollback_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub register: RegisterFlags,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// What to go back to: `previous` (the release before the one pinned now), a tag, a digest, or a GitOps
    /// commit [default: previous].
    #[arg(long, value_name = "previous|TAG|DIGEST|COMMIT")]
    pub to: Option<String>,
    /// Lift the environment's hold instead (no re-pin): the next release may roll it forward.
    #[arg(long, conflicts_with = "to")]
    pub lift_hold: bool,
    /// Why (recorded in the hold).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub bump: BumpFlags,
    #[command(flatten)]
    pub register: RegisterFlags,
}

/// `90`, `30s`, `15m`, `24h`, `7d` → seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration"))?;
    let mult: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("has an unknown unit `{other}` (s, m, h, d)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too long"))
}

impl Command {
    /// `promote SRC DST`: the two references, whose registries need credentials of their own.
    pub fn promote_refs(&self) -> Option<(&str, &str)> {
        match self {
            Command::Promote(p) => Some((p.source.as_deref()?, p.destination.as_deref()?)),
            _ => None,
        }
    }

    /// `verify IMAGE`: the image whose registry needs credentials.
    pub fn verify_ref(&self) -> Option<&str> {
        match self {
            Command::Verify(v) => Some(&v.reference),
            _ => None,
        }
    }
}
