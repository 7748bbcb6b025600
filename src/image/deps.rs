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
    /// `uv` if on PATH, else `pip` (as `python3 -m pip` when `python3` is there, else `pip`). Found by a PATH
    /// lookup, never by running anything: a build whose dependencies are cached must not pay for a Python
    /// start-up.
    pub fn find(path: Option<&str>) -> Result<Self, DepsError> {
        let on_path = |name: &str| {
            path.unwrap_or_default()
                .split(':')
                .any(|d| !d.is_empty() && Path::new(d).join(name).is_file())
        };
        if on_path("uv") {
            return Ok(Installer::Uv {
                version: "uv".into(),
            });
        }
        if on_path("python3") {
            return Ok(Installer::Pip {
                program: vec!["python3".into(), "-m".into(), "pip".into()],
                version: "pip".into(),
            });
        }
        if on_path("pip") {
            return Ok(Installer::Pip {
                program: vec!["pip".into()],
                version: "pip".into(),
            });
        }
        Err(DepsError::NoInstaller)
    }

    pub fn id(&self) -> &str {
        match self {
            Installer::Uv { version } | Installer::Pip { version, .. } => version,
        }
    }
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

pub fn cache_key(requirements: &[u8], arch: &str, python: &str, installer: &Installer) -> String {
    let mut h = Sha256::new();
    for part in [
        b"flowship-deps-v1".as_slice(),
        requirements,
        arch.as_bytes(),
        python.as_bytes(),
        installer.id().as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
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
