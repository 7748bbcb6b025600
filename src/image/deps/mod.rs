//! The dependency layer: the flow's requirements installed for the *target* platform and Python, without
//! running the target (`uv pip install` or `pip install` with `--target`, platform, Python version,
//! `--only-binary=:all:`, `--no-compile`), into a directory that becomes `/opt/flowship/site-packages`.
//! The cache key covers everything that decides the result, so a layer recorded under it in the registry is
//! reused by any runner without running the installer at all.

mod install;

pub(crate) use install::retarget_scripts;
pub use install::{Target, install};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the dependencies live in the image; the image's `PYTHONPATH` starts here.
pub const SITE: &str = "opt/flowship/site-packages";

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("no Python package installer found: flowship runs `uv` or `pip`")]
    NoInstaller,
    #[error("{installer} failed for {platform} / Python {python} (exit {code}):\n{output}")]
    Failed {
        installer: String,
        platform: String,
        python: String,
        code: i32,
        output: String,
    },
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}

impl DepsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            DepsError::NoInstaller => {
                Some("install uv (pip install uv) or pip in the job image".into())
            }
            DepsError::Failed { output, python, .. } => Some(super::failures::hint(output, python)),
            DepsError::Io { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Installer {
    Uv {
        version: String,
    },
    Pip {
        program: Vec<String>,
        version: String,
    },
}

impl Installer {
    /// `uv` if on PATH, else `pip` (as `python3 -m pip` when `python3` is there, else `pip`), with its
    /// version. Only called when there is something to install; pip's version is read from its dist-info
    /// next to the interpreter when it can be (a Python start-up costs ~0.3 s), uv's by `uv --version`
    /// (a native binary: milliseconds).
    pub fn find(path: Option<&str>) -> Result<Self, DepsError> {
        let lookup = |name: &str| {
            path.unwrap_or_default()
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        };
        if let Some(uv) = lookup("uv") {
            let version =
                run_version(Command::new(&uv).arg("--version")).unwrap_or_else(|| "uv".into());
            return Ok(Installer::Uv { version });
        }
        if let Some(py) = lookup("python3") {
            let program = vec!["python3".to_string(), "-m".into(), "pip".into()];
            let version = pip_dist_info(&py)
                .or_else(|| run_version(Command::new(&py).args(["-m", "pip", "--version"])))
                .unwrap_or_else(|| "pip".into());
            return Ok(Installer::Pip { program, version });
        }
        if let Some(pip) = lookup("pip") {
            let version =
                run_version(Command::new(&pip).arg("--version")).unwrap_or_else(|| "pip".into());
            return Ok(Installer::Pip {
                program: vec!["pip".into()],
                version,
            });
        }
        Err(DepsError::NoInstaller)
    }

    /// `uv 0.13.9` / `pip 23.2.1`: the installer and its version, part of the cache key.
    pub fn id(&self) -> &str {
        match self {
            Installer::Uv { version } | Installer::Pip { version, .. } => version,
        }
    }
}

/// The first two words of `--version` (`uv 0.13.9 (abc 2026-01-01)` → `uv 0.13.9`).
fn run_version(cmd: &mut Command) -> Option<String> {
    let out = scrubbed(cmd).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    (words.len() == 2).then(|| words.join(" "))
}

/// pip's version from `pip-X.dist-info` in the interpreter's own site-packages (a virtualenv's, or the
/// system's), without starting Python.
fn pip_dist_info(python: &Path) -> Option<String> {
    let prefix = python.parent()?.parent()?;
    let mut dirs = Vec::new();
    for lib in [
        prefix.join("lib"),
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/local/lib"),
    ] {
        for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("python3") {
                dirs.push(entry.path().join("site-packages"));
                dirs.push(entry.path().join("dist-packages"));
            }
        }
    }
    dirs.into_iter().find_map(|d| {
        std::fs::read_dir(d).ok()?.flatten().find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix("pip-")?.strip_suffix(".dist-info")?;
            Some(format!("pip {v}"))
        })
    })
}

/// Variables that choose where packages come from, for pip and for uv.
const INDEX_VARIABLES: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_CONFIG_FILE",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_CONFIG_FILE",
];

/// Where the installer takes packages from, as far as the machine says: the index variables and the
/// installer configuration files (pip.conf, uv.toml), with credentials in URLs left out (a rotated token is
/// the same index). Part of the cache key: the same requirements from another index are another layer.
pub fn index_config(env: &std::collections::BTreeMap<String, String>) -> String {
    let strip = |s: &str| {
        regex::Regex::new(r"//[^/@\s]+@")
            .expect("valid regex")
            .replace_all(s, "//")
            .into_owned()
    };
    let mut out = String::new();
    for v in INDEX_VARIABLES {
        if let Some(value) = env.get(*v) {
            out.push_str(&format!("{v}={}\n", strip(value)));
        }
    }
    let home = env.get("HOME").map(PathBuf::from);
    let mut files: Vec<PathBuf> = vec![
        "/etc/pip.conf".into(),
        "/etc/xdg/pip/pip.conf".into(),
        "/etc/uv/uv.toml".into(),
    ];
    if let Some(h) = &home {
        files.push(h.join(".config/pip/pip.conf"));
        files.push(h.join(".pip/pip.conf"));
        files.push(h.join(".config/uv/uv.toml"));
    }
    if let Some(v) = env.get("VIRTUAL_ENV") {
        files.push(Path::new(v).join("pip.conf"));
    }
    for var in ["PIP_CONFIG_FILE", "UV_CONFIG_FILE"] {
        if let Some(f) = env.get(var) {
            files.push(f.into());
        }
    }
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            out.push_str(&format!("{}:\n{}\n", f.display(), strip(&text)));
        }
    }
    out
}

/// `linux/amd64` on the base's libc → pip platform tags / uv's `--python-platform`: the newest manylinux the
/// base's glibc runs (uv names 2_17, 2_28 and 2_31 to 2_40), musllinux on musl, manylinux_2_28 when the libc
/// is not known.
pub(crate) fn platform_tags(
    arch: &str,
    libc: Option<&crate::image::base::Libc>,
) -> (Vec<String>, String) {
    use crate::image::base::Libc;
    let m = if arch == "arm64" { "aarch64" } else { "x86_64" };
    let glibc = match libc {
        Some(Libc::Musl) => {
            let pip = (0..=2).map(|v| format!("musllinux_1_{v}_{m}")).collect();
            return (pip, format!("{m}-unknown-linux-musl"));
        }
        Some(Libc::Glibc { version: Some(v) }) => Some(crate::image::base::fit::version(v)),
        _ => None,
    };
    let Some((2, minor)) = glibc.filter(|(major, _)| *major == 2) else {
        let pip = [
            "manylinux2014",
            "manylinux_2_17",
            "manylinux_2_28",
            "manylinux_2_34",
            "linux",
        ]
        .iter()
        .map(|t| format!("{t}_{m}"))
        .collect();
        return (pip, format!("{m}-manylinux_2_28"));
    };
    let mut pip: Vec<String> = vec![format!("manylinux2014_{m}")];
    pip.extend((17..=minor.max(17)).map(|v| format!("manylinux_2_{v}_{m}")));
    pip.push(format!("linux_{m}"));
    let uv = match minor.min(40) {
        ..28 => 17,
        28..31 => 28,
        v => v,
    };
    (pip, format!("{m}-manylinux_2_{uv}"))
}

/// What the install reads, for the cache key: the requirements file, every file it includes (`-r`, `-c`),
/// and the *content* of every local artifact it names (a wheel, a path, `--find-links` directories,
/// `name @ file://...`), so that a rebuilt local wheel under the same name is another layer, never a stale
/// one reused.
pub fn inputs(requirements: &Path) -> Result<Vec<u8>, DepsError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    read_inputs(requirements, &mut out, &mut seen, 0)?;
    Ok(out)
}

fn read_inputs(
    file: &Path,
    out: &mut Vec<u8>,
    seen: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), DepsError> {
    if depth > 8 || seen.iter().any(|s| s == file) {
        return Ok(());
    }
    seen.push(file.to_path_buf());
    let bytes = std::fs::read(file).map_err(|e| DepsError::Io {
        path: file.into(),
        reason: e.to_string(),
    })?;
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(&bytes);
    let dir = file.parent().unwrap_or(Path::new("."));
    for line in String::from_utf8_lossy(&bytes).lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        let (flag, rest) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((f, r)) if f.starts_with('-') => (f, r.trim()),
            _ => ("", line),
        };
        match flag {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                read_inputs(&dir.join(rest), out, seen, depth + 1)?;
            }
            "-f" | "--find-links" | "-e" | "--editable" => local_content(dir, rest, out),
            _ => {
                // `name @ file:///path`, `./pkg`, `../x.whl`, `/abs/x.whl`.
                let target = rest
                    .split_once(" @ ")
                    .map(|(_, u)| u.trim())
                    .unwrap_or(rest);
                let local = target.starts_with("file:")
                    || target.starts_with("./")
                    || target.starts_with("../")
                    || target.starts_with('/')
                    || target.ends_with(".whl");
                if local {
                    local_content(dir, target, out);
                }
            }
        }
    }
    Ok(())
}

/// The content of a local file or directory (walked in order, `.git` and caches skipped) into `out`.
fn local_content(base: &Path, spec: &str, out: &mut Vec<u8>) {
    let path = spec
        .strip_prefix("file://")
        .or_else(|| spec.strip_prefix("file:"))
        .unwrap_or(spec);
    let path = base.join(path);
    out.extend_from_slice(path.to_string_lossy().as_bytes());
    let mut stack = vec![path];
    let mut files = 0usize;
    while let Some(p) = stack.pop() {
        if files > 50_000 {
            break;
        }
        if p.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|c| {
                    !c.file_name()
                        .is_some_and(|n| n == ".git" || n == "__pycache__" || n == ".venv")
                })
                .collect();
            children.sort();
            children.reverse();
            stack.extend(children);
        } else if let Ok(bytes) = std::fs::read(&p) {
            files += 1;
            out.extend_from_slice(p.to_string_lossy().as_bytes());
            out.extend_from_slice(&Sha256::digest(&bytes));
        }
    }
}

/// Everything that decides the layer: what the install reads (see [`inputs`]), the platform, the Python,
/// the installer and its version, where it takes packages from, and what the base adds (`base`: the platform
/// tag its libc allows and the constraints of its own packages).
pub fn cache_key(
    inputs: &[u8],
    arch: &str,
    python: &str,
    installer: &Installer,
    index: &str,
    base: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        b"flowship-deps-v4".as_slice(),
        inputs,
        arch.as_bytes(),
        python.as_bytes(),
        installer.id().as_bytes(),
        index.as_bytes(),
        base.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// uv trusts only its bundled roots unless told otherwise, so a network that pip reaches through the system's
/// store (a TLS-inspecting proxy, a private index) fails the moment uv appears on PATH. flowship trusts the
/// system's store for its own requests, and has uv do the same, unless the user chose uv's trust already.
pub fn uv_trust(is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    const CHOSEN: [&str; 4] = [
        "UV_SYSTEM_CERTS",
        "UV_NATIVE_TLS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    if CHOSEN.iter().any(|k| is_set(k)) {
        return Vec::new();
    }
    // UV_NATIVE_TLS: the same switch under the name older uv releases read.
    vec![("UV_SYSTEM_CERTS", "1"), ("UV_NATIVE_TLS", "1")]
}

/// Variables that hold flowship's own secrets (and their `_FILE` forms): a child process (the installer,
/// uv export) has no use for them, so it never gets them. Package-index credentials (`PIP_*`, `UV_*`,
/// `~/.netrc`) stay: the installer needs those.
const SECRET_VARIABLES: [&str; 13] = [
    "FLOWSHIP_REGISTRY_PASSWORD",
    "FLOWSHIP_GIT_TOKEN",
    "FLOWSHIP_GIT_SSH_KEY",
    "FLOWSHIP_GITLAB_TOKEN",
    "FLOWSHIP_PLAN_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_KEY",
    "HARBOR_PASSWORD",
    "CI_JOB_TOKEN",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "DOCKER_AUTH_CONFIG",
    "GITLAB_TOKEN",
];

/// `cmd` without flowship's secret variables (nor their `_FILE` forms, nor any the environment names with
/// `_variable` settings are passed on: see `SECRET_VARIABLES`).
pub fn scrubbed(cmd: &mut Command) -> &mut Command {
    for v in SECRET_VARIABLES {
        cmd.env_remove(v);
        cmd.env_remove(format!("{v}_FILE"));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn uv_trusts_the_system_store_unless_its_trust_was_chosen() {
        assert_eq!(
            uv_trust(|_| false),
            vec![("UV_SYSTEM_CERTS", "1"), ("UV_NATIVE_TLS", "1")]
        );
        assert!(uv_trust(|k| k == "SSL_CERT_FILE").is_empty());
        assert!(uv_trust(|k| k == "UV_NATIVE_TLS").is_empty());
    }

    #[test]
    fn the_key_changes_with_the_installer_version_and_the_index_not_the_token() {
        let uv = |v: &str| Installer::Uv { version: v.into() };
        let env = |url: &str| BTreeMap::from([("PIP_INDEX_URL".to_string(), url.to_string())]);
        let a = index_config(&env("https://user:tok1@pypi.internal/simple"));
        let b = index_config(&env("https://user:tok2@pypi.internal/simple"));
        let c = index_config(&env("https://mirror.internal/simple"));
        assert_eq!(a, b, "credentials are not part of the index");
        assert!(!a.contains("tok1"));
        let key =
            |i: &Installer, idx: &str| cache_key(b"six==1.16.0\n", "amd64", "3.11", i, idx, "");
        assert_ne!(key(&uv("uv 0.13.9"), &a), key(&uv("uv 0.13.8"), &a));
        assert_ne!(key(&uv("uv 0.13.9"), &a), key(&uv("uv 0.13.9"), &c));
        assert_eq!(key(&uv("uv 0.13.9"), &a), key(&uv("uv 0.13.9"), &b));
    }

    #[test]
    fn versions_are_the_first_two_words() {
        let mut c = Command::new("echo");
        c.arg("uv 0.13.9 (abc 2026-01-01)");
        assert_eq!(run_version(&mut c).as_deref(), Some("uv 0.13.9"));
    }

    #[test]
    fn the_inputs_cover_the_content_of_local_artifacts_and_included_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("wheels")).unwrap();
        std::fs::write(p.join("wheels/lib-1.0-py3-none-any.whl"), "v1").unwrap();
        std::fs::write(p.join("base.txt"), "six==1.16.0\n").unwrap();
        std::fs::write(
            p.join("requirements.txt"),
            "-r base.txt\n--find-links ./wheels\n./wheels/lib-1.0-py3-none-any.whl\n",
        )
        .unwrap();
        let a = inputs(&p.join("requirements.txt")).unwrap();
        std::fs::write(p.join("wheels/lib-1.0-py3-none-any.whl"), "v2").unwrap();
        let b = inputs(&p.join("requirements.txt")).unwrap();
        assert_ne!(a, b, "a rebuilt wheel under the same name is another layer");
        std::fs::write(p.join("base.txt"), "six==1.17.0\n").unwrap();
        assert_ne!(
            b,
            inputs(&p.join("requirements.txt")).unwrap(),
            "an included file counts"
        );
    }
}
