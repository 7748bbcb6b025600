//! The dependency installer's run: the requirements (never editable) installed with `--target` for the
//! image's platform, Python and libc, the base's packages as constraints, the project's named indexes by name;
//! a pure-Python package published only as source built here and the install run again; console scripts
//! rewritten for the image's Python.

use super::{DepsError, Installer, platform_tags, scrubbed, uv_trust};
use std::path::{Path, PathBuf};
use std::process::Command;

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
        if let (Installer::Uv { .. }, Some(pkg)) =
            (installer, crate::image::sdists::source_only(&text))
            && !from_source.contains(&pkg)
            && from_source.len() < 32
        {
            crate::image::sdists::build_pure(&pkg, site)?;
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
