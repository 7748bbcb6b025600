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

/// The requirements without `-e`/`--editable`: an editable install leaves `.pth` files naming the build
/// machine's paths, which do not exist in the image. Written beside `target`; `None` when nothing changes.
fn never_editable(requirements: &Path, target: &Path) -> Result<Option<PathBuf>, DepsError> {
    let io = |e: std::io::Error| DepsError::Io {
        path: requirements.into(),
        reason: e.to_string(),
    };
    let text = std::fs::read_to_string(requirements).map_err(io)?;
    let mut changed = false;
    let dir = requirements.parent().unwrap_or(Path::new("."));
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            for flag in ["-e ", "--editable ", "--editable="] {
                if let Some(rest) = t.strip_prefix(flag) {
                    changed = true;
                    let rest = rest.trim();
                    // Relative paths stay relative to the original file's directory.
                    return if rest.starts_with('.') {
                        dir.join(rest).display().to_string()
                    } else {
                        rest.to_string()
                    };
                }
            }
            l.to_string()
        })
        .collect();
    if !changed {
        return Ok(None);
    }
    let out = target.with_extension("requirements.txt");
    std::fs::write(&out, lines.join("\n") + "\n").map_err(io)?;
    Ok(Some(out))
}

/// Console scripts the installer wrote name the build machine's interpreter (`#!/home/runner/.pyenv/...`):
/// in the image they must run with the image's own Python, found on its `PATH`.
pub(crate) fn retarget_scripts(target: &Path) {
    let Ok(entries) = std::fs::read_dir(target.join("bin")) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        if !bytes.starts_with(b"#!") {
            continue;
        }
        let end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let first = String::from_utf8_lossy(&bytes[..end]);
        if !first.contains("python") || first.starts_with("#!/usr/bin/env python3") {
            continue;
        }
        let mut out = b"#!/usr/bin/env python3".to_vec();
        out.extend_from_slice(&bytes[end..]);
        let _ = std::fs::write(&p, out);
    }
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

/// What an install is for: the platform, the base's Python and libc, and the base's own packages as
/// constraints (a `name==version` file).
pub struct Target<'a> {
    pub arch: &'a str,
    /// `3.12`.
    pub python: &'a str,
    pub libc: Option<&'a crate::image::base::Libc>,
    pub constraints: Option<&'a Path>,
    /// The project's named indexes (`[[tool.uv.index]]`, `(name, url)`), which the requirements name by url
    /// only: told to uv by name too, so that their `UV_INDEX_<NAME>_USERNAME`/`_PASSWORD` apply.
    pub indexes: &'a [(String, String)],
}

/// What an install did besides installing.
#[derive(Debug, Default)]
pub struct Installed {
    /// Pure-Python packages built from source (published without a wheel).
    pub from_source: Vec<String>,
    /// The requirements could not be met with the base's versions of its packages: installed without them
    /// as constraints (the layer shadows some of the base's packages).
    pub unconstrained: bool,
}

/// Install `requirements` into `site` for `target`. When the base's constraints make the requirements
/// unsatisfiable (a range the base's version is outside of), they are installed without the constraints,
/// as before the base took part, and the caller reports the shadowing.
pub fn install(
    installer: &Installer,
    requirements: &Path,
    target: &Target,
    site: &Path,
) -> Result<Installed, DepsError> {
    let sanitized = never_editable(requirements, site)?;
    let requirements = sanitized.as_deref().unwrap_or(requirements);
    match run_install(installer, requirements, target, site) {
        Err(DepsError::Failed { .. }) if target.constraints.is_some() => {
            let _ = std::fs::remove_dir_all(site);
            std::fs::create_dir_all(site).map_err(|e| DepsError::Io {
                path: site.into(),
                reason: e.to_string(),
            })?;
            let free = Target {
                constraints: None,
                ..*target
            };
            let mut done = run_install(installer, requirements, &free, site)?;
            done.unconstrained = true;
            Ok(done)
        }
        other => other,
    }
}

/// `UV_INDEX` with the project's named indexes after the machine's own (`None`: nothing to add).
fn named_indexes(indexes: &[(String, String)], machine: Option<String>) -> Option<String> {
    let named: Vec<String> = indexes
        .iter()
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, u)| format!("{n}={u}"))
        .collect();
    (!named.is_empty()).then(|| {
        machine
            .filter(|m| !m.trim().is_empty())
            .into_iter()
            .chain(named)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The installer's command line for `target`.
fn install_command(
    installer: &Installer,
    requirements: &Path,
    target: &Target,
    site: &Path,
) -> Command {
    let (pip_platforms, uv_platform) = platform_tags(target.arch, target.libc);
    let python = target.python;
    let mut c = match installer {
        Installer::Uv { .. } => {
            let mut c = Command::new("uv");
            c.args(["pip", "install", "--quiet", "--target"]).arg(site);
            c.args([
                "--python-platform",
                &uv_platform,
                "--python-version",
                python,
                "--only-binary",
                ":all:",
                "--no-compile",
            ]);
            for (k, v) in uv_trust(|k| std::env::var_os(k).is_some()) {
                c.env(k, v);
            }
            if let Some(v) = named_indexes(target.indexes, std::env::var("UV_INDEX").ok()) {
                c.env("UV_INDEX", v);
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
                .arg(site);
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
            ]);
            c
        }
    };
    if let Some(constraints) = target.constraints {
        c.arg("-c").arg(constraints);
    }
    c.arg("-r").arg(requirements);
    // pip writes .pyc files and timestamps only where told; --no-compile and the layer's fixed mtime cover both.
    c.env("PYTHONDONTWRITEBYTECODE", "1");
    scrubbed(&mut c);
    c
}

fn run_install(
    installer: &Installer,
    requirements: &Path,
    target: &Target,
    site: &Path,
) -> Result<Installed, DepsError> {
    let mut cmd = install_command(installer, requirements, target, site);
    // A package published only as source (uv names it) is built here when it is pure Python, installed into
    // the target, and the install run again: the resolver takes it as installed.
    let mut from_source: Vec<String> = Vec::new();
    loop {
        let out = cmd.output().map_err(|e| DepsError::Io {
            path: requirements.into(),
            reason: e.to_string(),
        })?;
        if out.status.success() {
            break;
        }
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        if let (Installer::Uv { .. }, Some(pkg)) = (installer, super::sdists::source_only(&text))
            && !from_source.contains(&pkg)
            && from_source.len() < 32
        {
            super::sdists::build_pure(&pkg, site)?;
            from_source.push(pkg);
            continue;
        }
        return Err(DepsError::Failed {
            installer: installer.id().into(),
            platform: format!("linux/{}", target.arch),
            python: target.python.into(),
            code: out.status.code().unwrap_or(-1),
            output: last_lines(&text, 15),
        });
    }
    retarget_scripts(site);
    Ok(Installed {
        from_source,
        unconstrained: false,
    })
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn named_indexes_follow_the_machines_own() {
        let ix = vec![
            (
                "private".to_string(),
                "https://pkgs.example/simple".to_string(),
            ),
            (String::new(), "https://other.example/simple".to_string()),
        ];
        assert_eq!(named_indexes(&[], None), None);
        assert_eq!(
            named_indexes(&ix, None).as_deref(),
            Some("private=https://pkgs.example/simple")
        );
        assert_eq!(
            named_indexes(&ix, Some("corp=https://corp.example/simple".into())).as_deref(),
            Some("corp=https://corp.example/simple private=https://pkgs.example/simple")
        );
    }

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

    #[test]
    fn editable_lines_are_installed_as_regular_ones_and_scripts_use_the_images_python() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("r.txt"), "-e ./pkg\nsix\n").unwrap();
        let out = never_editable(&p.join("r.txt"), &p.join("site"))
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert!(!text.contains("-e"), "{text}");
        assert!(text.contains("pkg\nsix"), "{text}");
        std::fs::create_dir_all(p.join("site/bin")).unwrap();
        std::fs::write(
            p.join("site/bin/prefect"),
            "#!/root/.pyenv/versions/3.11.7/bin/python3.11\nimport sys\n",
        )
        .unwrap();
        retarget_scripts(&p.join("site"));
        assert_eq!(
            std::fs::read_to_string(p.join("site/bin/prefect")).unwrap(),
            "#!/usr/bin/env python3\nimport sys\n"
        );
    }
}
