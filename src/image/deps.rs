//! The dependency layer: the flow's requirements installed for the *target* platform and Python, without
//! running the target (`uv pip install` or `pip install` with `--target`, platform, Python version,
//! `--only-binary=:all:`, `--no-compile`), into a directory that becomes `/opt/flowship/site-packages`.
//! The cache key covers everything that decides the result, so a layer recorded under it in the registry is
//! reused by any runner without running the installer at all.

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
            DepsError::NoInstaller => Some("install uv (pip install uv) or pip in the job image".into()),
            DepsError::Failed { .. } => Some(
                "every requirement needs a wheel for the target platform (--only-binary=:all:); pin versions that ship one".into(),
            ),
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
    let out = cmd.output().ok().filter(|o| o.status.success())?;
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

/// `linux/amd64` → pip platform tags / uv's `--python-platform`.
fn platform_tags(arch: &str) -> (Vec<String>, String) {
    let m = if arch == "arm64" { "aarch64" } else { "x86_64" };
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
    (pip, format!("{m}-manylinux_2_28"))
}

/// Everything that decides the layer: the requirements, the platform, the Python, the installer and its
/// version, and where it takes packages from.
pub fn cache_key(
    requirements: &[u8],
    arch: &str,
    python: &str,
    installer: &Installer,
    index: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        b"flowship-deps-v2".as_slice(),
        requirements,
        arch.as_bytes(),
        python.as_bytes(),
        installer.id().as_bytes(),
        index.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// uv trusts only its bundled roots unless told otherwise, so a network that pip reaches through the system's
/// store (a TLS-inspecting proxy, a private index) fails the moment uv appears on PATH. flowship trusts the
/// system's store for its own requests, and has uv do the same, unless the user chose uv's trust already.
fn uv_trust(is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
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

/// Install `requirements` into `target` for linux/`arch` and Python `python` (`3.12`).
pub fn install(
    installer: &Installer,
    requirements: &Path,
    arch: &str,
    python: &str,
    target: &Path,
) -> Result<(), DepsError> {
    let (pip_platforms, uv_platform) = platform_tags(arch);
    let mut cmd = match installer {
        Installer::Uv { .. } => {
            let mut c = Command::new("uv");
            c.args(["pip", "install", "--quiet", "--target"])
                .arg(target);
            c.args([
                "--python-platform",
                &uv_platform,
                "--python-version",
                python,
                "--only-binary",
                ":all:",
                "--no-compile",
                "-r",
            ]);
            c.arg(requirements);
            for (k, v) in uv_trust(|k| std::env::var_os(k).is_some()) {
                c.env(k, v);
            }
            c
        }
        Installer::Pip { program, .. } => {
            let mut c = Command::new(&program[0]);
            c.args(&program[1..])
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--target",
                ])
                .arg(target);
            for p in &pip_platforms {
                c.args(["--platform", p]);
            }
            c.args([
                "--python-version",
                python,
                "--implementation",
                "cp",
                "--only-binary=:all:",
                "--no-compile",
                "-r",
            ]);
            c.arg(requirements);
            c
        }
    };
    // pip writes .pyc files and timestamps only where told; --no-compile and the layer's fixed mtime cover both.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let out = cmd.output().map_err(|e| DepsError::Io {
        path: requirements.into(),
        reason: e.to_string(),
    })?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(DepsError::Failed {
            installer: installer.id().into(),
            platform: format!("linux/{arch}"),
            python: python.into(),
            code: out.status.code().unwrap_or(-1),
            output: text
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(())
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
        let key = |i: &Installer, idx: &str| cache_key(b"six==1.16.0\n", "amd64", "3.11", i, idx);
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
}
