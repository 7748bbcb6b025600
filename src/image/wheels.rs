//! Local packages (the project itself, uv workspace members, path dependencies) as wheels, built on the build
//! machine (`uv build --wheel`, else `pip wheel --no-deps`; the build backend comes from the configured
//! index) and installed without their dependencies (the dependency layer has them) into the project layer's
//! directory. Never editable: the image holds the built package, not a link to the build machine.

use super::cache::Local;
use super::deps::{self, Installer};
use super::sources;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("{}: the package does not build as a wheel ({tool}, exit {code}):\n{output}", dir.display())]
    Build {
        dir: PathBuf,
        tool: String,
        code: i32,
        output: String,
    },
    #[error("installing the project's wheels failed ({tool}, exit {code}):\n{output}")]
    Install {
        tool: String,
        code: i32,
        output: String,
    },
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}

impl WheelError {
    pub fn hint(&self) -> Option<String> {
        match self {
            WheelError::Build { dir, .. } => Some(format!(
                "fix the packaging in {}/pyproject.toml ([build-system], and which packages it ships, e.g. [tool.setuptools] packages or [tool.hatch.build.targets.wheel] packages), or make it no package (`[tool.uv] package = false`)",
                dir.display()
            )),
            WheelError::Install { .. } => Some(
                "the wheel does not fit the target: check its tags against the base's Python (--python-version)".into(),
            ),
            WheelError::Io { .. } => None,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WheelError + '_ {
    move |e| WheelError::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// The last lines of a failed tool's output.
fn tail(out: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn prepared(cmd: &mut Command) -> &mut Command {
    deps::scrubbed(cmd);
    for (k, v) in deps::uv_trust(|k| std::env::var_os(k).is_some()) {
        cmd.env(k, v);
    }
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("VIRTUAL_ENV")
}

/// One wheel per directory of `dirs`, into `out`, in the same order, and a note per wheel reused from the
/// local cache (one whose package's files are unchanged since it was built: `sources`).
pub fn build(
    installer: &Installer,
    dirs: &[PathBuf],
    out: &Path,
    mtime: u64,
    cache: Option<&Local>,
) -> Result<(Vec<PathBuf>, Vec<String>), WheelError> {
    let mut wheels = Vec::new();
    let mut notes = Vec::new();
    // What the backend sees: the child inherits this process's environment.
    let env: BTreeMap<String, String> = std::env::vars().collect();
    for (i, dir) in dirs.iter().enumerate() {
        let dest = out.join(i.to_string());
        let fingerprint = cache.and_then(|c| Fingerprint::of(c, dir, installer, &env));
        if let Some(hit) = fingerprint.as_ref().and_then(Fingerprint::cached) {
            notes.push(format!(
                "{}: wheel reused from the local cache (its package's files are unchanged)",
                dir.display()
            ));
            wheels.push(hit);
            continue;
        }
        std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        let wheel = build_one(installer, dir, &dest, mtime)?;
        if let Some(f) = fingerprint {
            f.record(&dest, &wheel);
        }
        wheels.push(wheel);
    }
    Ok((wheels, notes))
}

/// A local package's place in the local cache: its build key, and its roots when a build recorded them.
struct Fingerprint<'a> {
    cache: &'a Local,
    dir: &'a Path,
    tree: sources::Tree,
    build_key: String,
}

impl<'a> Fingerprint<'a> {
    fn of(
        cache: &'a Local,
        dir: &'a Path,
        installer: &Installer,
        env: &BTreeMap<String, String>,
    ) -> Option<Self> {
        let tree = sources::Tree::read(dir)?;
        let build_key = sources::build_key(dir, &tree, installer.id(), env);
        Some(Self {
            cache,
            dir,
            tree,
            build_key,
        })
    }

    fn roots(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.cache.get("sources", &self.build_key)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The wheel built from these very files, when the cache has it.
    fn cached(&self) -> Option<PathBuf> {
        let key = sources::key(self.dir, &self.build_key, &self.tree, &self.roots()?);
        let dir = self.cache.get("wheels", &key)?;
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
    }

    /// Keep the wheel just built (in `dest`) under the key its own roots give.
    fn record(&self, dest: &Path, wheel: &Path) {
        let Some(roots) = sources::roots(self.dir, &self.tree, wheel) else {
            return;
        };
        if let Ok(json) = serde_json::to_vec(&roots) {
            self.cache.put_bytes("sources", &self.build_key, &json);
        }
        let key = sources::key(self.dir, &self.build_key, &self.tree, &roots);
        self.cache.put("wheels", &key, dest);
    }
}

fn build_one(
    installer: &Installer,
    dir: &Path,
    dest: &Path,
    mtime: u64,
) -> Result<PathBuf, WheelError> {
    let mut cmd = match installer {
        Installer::Uv { .. } => {
            let mut c = Command::new("uv");
            c.args([
                "build",
                "--wheel",
                "--quiet",
                "--no-python-downloads",
                "--out-dir",
            ])
            .arg(dest)
            .arg(dir);
            c
        }
        Installer::Pip { program, .. } => {
            let mut c = Command::new(&program[0]);
            c.args(&program[1..])
                .args([
                    "wheel",
                    "--quiet",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "-w",
                ])
                .arg(dest)
                .arg(dir);
            c
        }
    };
    // Backends that honour it (setuptools, hatchling, poetry-core) date the wheel's entries by it.
    cmd.env("SOURCE_DATE_EPOCH", mtime.max(315_532_800).to_string());
    let tool = match installer {
        Installer::Uv { .. } => "uv build",
        Installer::Pip { .. } => "pip wheel",
    };
    let o = prepared(&mut cmd).output().map_err(io(dir))?;
    if !o.status.success() {
        return Err(WheelError::Build {
            dir: dir.into(),
            tool: tool.into(),
            code: o.status.code().unwrap_or(-1),
            output: tail(&o),
        });
    }
    std::fs::read_dir(dest)
        .map_err(io(dest))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| WheelError::Build {
            dir: dir.into(),
            tool: tool.into(),
            code: 0,
            output: "no wheel was written".into(),
        })
}

/// Install `wheels` (no dependencies) into `target` for `to` (its platform, Python and libc).
pub fn install(
    installer: &Installer,
    wheels: &[PathBuf],
    to: &deps::Target,
    target: &Path,
) -> Result<(), WheelError> {
    let (pip_platforms, uv_platform) = deps::platform_tags(to.arch, to.libc);
    let python = to.python;
    let mut cmd = match installer {
        Installer::Uv { .. } => {
            let mut c = Command::new("uv");
            c.args([
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-compile",
                "--target",
            ])
            .arg(target)
            .args([
                "--python-platform",
                &uv_platform,
                "--python-version",
                python,
            ]);
            c
        }
        Installer::Pip { program, .. } => {
            let mut c = Command::new(&program[0]);
            c.args(&program[1..])
                .args(["install", "--quiet", "--no-deps", "--no-compile"])
                .args(["--disable-pip-version-check", "--no-input", "--target"])
                .arg(target);
            for p in &pip_platforms {
                c.args(["--platform", p]);
            }
            c.args(["--python-version", python, "--implementation", "cp"])
                .arg("--only-binary=:all:");
            c
        }
    };
    cmd.args(wheels);
    let o = prepared(&mut cmd).output().map_err(io(target))?;
    if !o.status.success() {
        return Err(WheelError::Install {
            tool: installer.id().into(),
            code: o.status.code().unwrap_or(-1),
            output: tail(&o),
        });
    }
    deps::retarget_scripts(target);
    reproducible(target);
    Ok(())
}

/// What an install records about the build machine (the wheel's path in a temporary directory, the
/// installer's cache, its lock file) is left out, so that the same code gives the same layer anywhere.
fn reproducible(target: &Path) {
    const DROP: [&str; 2] = ["direct_url.json", "uv_cache.json"];
    let _ = std::fs::remove_file(target.join(".lock"));
    for e in std::fs::read_dir(target).into_iter().flatten().flatten() {
        let dist = e.path();
        if dist.extension().is_none_or(|x| x != "dist-info") {
            continue;
        }
        for f in DROP {
            let _ = std::fs::remove_file(dist.join(f));
        }
        let record = dist.join("RECORD");
        if let Ok(text) = std::fs::read_to_string(&record) {
            let kept: String = text
                .lines()
                .filter(|l| !DROP.iter().any(|f| l.contains(&format!(".dist-info/{f},"))))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(&record, kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wheels_temporary_path_is_not_recorded() {
        let d = tempfile::tempdir().unwrap();
        let dist = d.path().join("etl-0.1.dist-info");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(d.path().join(".lock"), "").unwrap();
        std::fs::write(dist.join("direct_url.json"), "{\"url\":\"file:///tmp/x\"}").unwrap();
        std::fs::write(dist.join("uv_cache.json"), "{}").unwrap();
        std::fs::write(
            dist.join("RECORD"),
            "etl/__init__.py,sha256=a,1\netl-0.1.dist-info/direct_url.json,sha256=b,2\netl-0.1.dist-info/uv_cache.json,sha256=c,3\n",
        )
        .unwrap();
        reproducible(d.path());
        assert!(!dist.join("direct_url.json").exists());
        assert!(!d.path().join(".lock").exists());
        assert_eq!(
            std::fs::read_to_string(dist.join("RECORD")).unwrap(),
            "etl/__init__.py,sha256=a,1\n"
        );
    }
}
