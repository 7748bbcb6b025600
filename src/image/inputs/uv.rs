//! uv projects and workspaces: `uv.lock` exported as pinned requirements (`uv export --locked`: exactly the
//! locked versions, dev groups left out, nothing editable). For a member of a uv workspace (a monorepo whose
//! flows import shared packages), the export runs at the workspace root for that member only
//! (`--package`), so that only its dependency closure goes in; its workspace dependencies come out as
//! directories, which `local` turns into wheels.

use super::InputError;
use std::path::{Path, PathBuf};

/// The uv project whose lock the context uses.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Workspace {
    /// The directory of `uv.lock`; paths in the export are relative to it.
    pub root: PathBuf,
    /// `--package NAME` (the context is a member), `--all-packages` (the context is a directory of the
    /// workspace that is no package of its own), or neither (the context is the root).
    pub scope: Scope,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scope {
    Root,
    Member(String),
    All,
}

fn project_name(dir: &Path) -> Option<String> {
    let doc: toml::Table = std::fs::read_to_string(dir.join("pyproject.toml"))
        .ok()?
        .parse()
        .ok()?;
    doc.get("project")?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

fn declares_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|d| d.get("tool")?.get("uv")?.get("workspace").cloned())
        .is_some()
}

/// The context's own `uv.lock`; else the workspace root `image.workspace` names; else one found above the
/// context (a `pyproject.toml` with `[tool.uv.workspace]` and a `uv.lock` beside it, up to the
/// repository's root).
pub(super) fn workspace_of(
    ctx: &Path,
    explicit: Option<&Path>,
) -> Result<Option<Workspace>, InputError> {
    let ctx = super::absolute(ctx);
    let root = match explicit {
        Some(w) => {
            let w = super::absolute(w);
            if !w.join("uv.lock").is_file() {
                return Err(InputError::new(
                    &w.join("uv.lock"),
                    "image.workspace names a directory without uv.lock",
                    "set image.workspace (--workspace) to the uv workspace's root, where uv.lock is, or run `uv lock` there",
                ));
            }
            w
        }
        None if ctx.join("uv.lock").is_file() => ctx.clone(),
        None => {
            let found = ctx.ancestors().skip(1).take(8).find_map(|d| {
                (declares_workspace(d) && d.join("uv.lock").is_file()).then(|| d.to_path_buf())
            });
            match found {
                Some(d) => d,
                None => return Ok(None),
            }
        }
    };
    let scope = if root == ctx {
        Scope::Root
    } else {
        project_name(&ctx).map_or(Scope::All, Scope::Member)
    };
    Ok(Some(Workspace { root, scope }))
}

/// A member that is no package and declares nothing exports an empty closure, while its workspace's root
/// declares what the flows need (a workspace of virtual members, built from the root by its own Dockerfile):
/// the image would have none of it, and none of the shared code outside the member's folder. Said, not
/// refused: a member may truly need nothing.
pub(super) fn empty_member(ctx: &Path, ws: &Workspace, export: &Path) -> Option<String> {
    let Scope::Member(name) = &ws.scope else {
        return None;
    };
    let text = std::fs::read_to_string(export).ok()?;
    let installs = text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'));
    if installs || super::local::is_package(ctx) {
        return None;
    }
    let doc: toml::Table = std::fs::read_to_string(ws.root.join("pyproject.toml"))
        .ok()?
        .parse()
        .ok()?;
    let declared = doc.get("project")?.get("dependencies")?.as_array()?.len();
    (declared > 0).then(|| {
        format!(
            "{}: the member `{name}` is no package and declares no dependencies, so nothing from uv.lock is installed; the workspace root's {declared} dependencies are not its own, and only its folder is copied: when the flows need the root's dependencies or code outside the folder, build from the root (--context {} --workdir DIR)",
            ctx.join("pyproject.toml").display(),
            ws.root.display()
        )
    })
}

/// `uv` on `path`.
pub(super) fn find_uv(path: Option<&str>) -> Option<PathBuf> {
    path.unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("uv"))
        .find(|p| p.is_file())
}

/// The lock of `ws`, exported as a requirements file into `out`. A lock out of date with `pyproject.toml`
/// is refused, as `uv sync --locked` refuses it. Checking it needs a Python on the build machine that fits
/// the project's `requires-python` (uv resolves again to compare); without one the lock is exported as it is
/// (`--frozen`), with a warning that says so (the image's Python is checked against `requires-python` on its
/// own, before anything is installed).
pub(super) fn export(
    req: &super::Request,
    ws: &Workspace,
    out: &Path,
) -> Result<Vec<String>, InputError> {
    let ctx = req.context;
    let lock = ws.root.join("uv.lock");
    let uv = find_uv(req.path).ok_or_else(|| {
        InputError::new(
            &lock,
            "uv is not on PATH; it reads uv.lock",
            "install uv in the job image (flowship's -python image has it), or pass --requirements FILE",
        )
    })?;
    // A checked export depends only on the lock, the workspace's project files, uv and the index: kept in
    // the local cache by them, it spares a code-only rebuild uv's start and its check.
    let cache = crate::image::cache::Local::at(req.cache);
    let key = cache.as_ref().and_then(|_| export_key(&uv, ws, req.index));
    if let Some(hit) = cache
        .as_ref()
        .zip(key.as_ref())
        .and_then(|(c, k)| c.get("export", k))
        && std::fs::copy(&hit, out).is_ok()
    {
        return Ok(Vec::new());
    }
    let text = match run_export(&uv, ws, "--locked", out, &lock)? {
        None => {
            project_indexes(ws, out)?;
            if let (Some(c), Some(k)) = (&cache, &key) {
                c.put("export", k, out);
            }
            return Ok(Vec::new());
        }
        Some(text) => text,
    };
    if text.contains("needs to be updated") || text.contains("--locked") {
        return Err(InputError::new(
            &lock,
            format!("uv.lock is out of date with pyproject.toml ({text})"),
            format!(
                "run `uv lock` in {} and commit uv.lock, or pass --requirements FILE",
                ws.root.display()
            ),
        ));
    }
    let no_python = [
        "interpreter",
        "No Python",
        "incompatible with the project's Python",
    ];
    if no_python.iter().any(|w| text.contains(w)) {
        return match run_export(&uv, ws, "--frozen", out, &lock)? {
            None => project_indexes(ws, out).map(|()| vec![format!(
                "{}: not checked against pyproject.toml (checking needs a Python on this machine that fits the project's requires-python); installed as locked",
                lock.display()
            )]),
            Some(text) => Err(failed(ctx, ws, &lock, &text)),
        };
    }
    Err(failed(ctx, ws, &lock, &text))
}

/// The index URLs the workspace's own configuration names: `[[tool.uv.index]]` of the root's
/// `pyproject.toml`, `[[index]]` of its `uv.toml` (which uv prefers when both are there).
pub(super) fn configured_indexes(ws: &Workspace) -> Vec<(String, String)> {
    let read = |file: &str, path: &[&str]| -> Option<Vec<(String, String)>> {
        let doc: toml::Table = std::fs::read_to_string(ws.root.join(file))
            .ok()?
            .parse()
            .ok()?;
        let mut v = &toml::Value::Table(doc);
        for p in path {
            v = v.get(p)?;
        }
        Some(
            v.as_array()?
                .iter()
                .filter_map(|i| {
                    let url = i.get("url")?.as_str()?.trim_end_matches('/').to_string();
                    let name = i.get("name").and_then(toml::Value::as_str).unwrap_or("");
                    Some((name.to_string(), url))
                })
                .collect(),
        )
    };
    read("uv.toml", &["index"])
        .or_else(|| read("pyproject.toml", &["tool", "uv", "index"]))
        .unwrap_or_default()
}

/// Keep, of the index lines uv wrote into the export `out`, those naming the project's own indexes (the
/// machine's own index configuration is the installer's to read, not the file's). An index URL holding a
/// credential is refused: the file is hashed into the cache key and its lines can reach output.
fn project_indexes(ws: &Workspace, out: &Path) -> Result<(), InputError> {
    let configured = configured_indexes(ws);
    let file = ws.root.join("pyproject.toml");
    for (name, url) in &configured {
        if let Ok(u) = url::Url::parse(url)
            && (!u.username().is_empty() || u.password().is_some())
        {
            return Err(InputError::new(
                &file,
                format!("the index `{name}` has a credential in its url"),
                format!(
                    "remove it from the url; give it as UV_INDEX_{}_USERNAME/_PASSWORD or in ~/.netrc",
                    name.to_ascii_uppercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                ),
            ));
        }
    }
    let text = std::fs::read_to_string(out)
        .map_err(|e| InputError::new(out, e.to_string(), "check the scratch directory"))?;
    let kept: String = text
        .lines()
        .filter(|l| {
            let url = ["--index-url ", "--extra-index-url "]
                .iter()
                .find_map(|f| l.strip_prefix(f));
            url.is_none_or(|u| {
                configured
                    .iter()
                    .any(|(_, c)| c == u.trim().trim_end_matches('/'))
            })
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(out, kept)
        .map_err(|e| InputError::new(out, e.to_string(), "check the scratch directory"))
}

/// What a checked export of `ws` is made from: uv (its path, size and time), the scope, the index, and the
/// content of `uv.lock` and of every `pyproject.toml`, `uv.toml` and `.python-version` in the workspace.
/// `None` when the workspace is too large to read.
fn export_key(uv: &Path, ws: &Workspace, index: &str) -> Option<String> {
    let mut k = crate::image::cache::Key::new("uv-export");
    let meta = std::fs::metadata(uv).ok()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    k.add(uv.to_string_lossy().as_bytes())
        .add(&meta.len().to_le_bytes())
        .add(&modified.to_le_bytes())
        .add(format!("{:?}", ws.scope).as_bytes())
        .add(index.as_bytes());
    let tree = crate::image::sources::Tree::read(&ws.root)?;
    let read = ["uv.lock", "pyproject.toml", "uv.toml", ".python-version"];
    for f in &tree.files {
        let name = f.rsplit('/').next().unwrap_or(f);
        if read.contains(&name) {
            k.add(f.as_bytes())
                .add(&std::fs::read(ws.root.join(f)).ok()?);
        }
    }
    Some(k.finish())
}

/// `uv export` with `mode` (`--locked`, `--frozen`); `None` when it succeeded, else what uv said.
fn run_export(
    uv: &Path,
    ws: &Workspace,
    mode: &str,
    out: &Path,
    lock: &Path,
) -> Result<Option<String>, InputError> {
    let mut cmd = std::process::Command::new(uv);
    crate::image::deps::scrubbed(&mut cmd);
    for (k, v) in crate::image::deps::uv_trust(|k| std::env::var_os(k).is_some()) {
        cmd.env(k, v);
    }
    cmd.current_dir(&ws.root).args([
        "export",
        mode,
        "--no-python-downloads",
        "--no-dev",
        "--no-hashes",
        "--no-editable",
        "--format",
        "requirements-txt",
        "--quiet",
        // The header names the output file, a temporary path: it would change the dependency layer's key.
        "--no-header",
        // The project's own indexes (`[[tool.uv.index]]`) reach the installer through the file; `indexes`
        // keeps only those.
        "--emit-index-url",
    ]);
    match &ws.scope {
        Scope::Root => {}
        Scope::Member(name) => {
            cmd.args(["--package", name]);
        }
        Scope::All => {
            cmd.arg("--all-packages");
        }
    }
    let output = cmd
        .arg("--output-file")
        .arg(out)
        .env_remove("VIRTUAL_ENV")
        .output()
        .map_err(|e| InputError::new(lock, format!("uv export: {e}"), "check that uv runs"))?;
    Ok((!output.status.success())
        .then(|| String::from_utf8_lossy(&output.stderr).trim().to_string()))
}

fn failed(ctx: &Path, ws: &Workspace, lock: &Path, text: &str) -> InputError {
    let hint = match &ws.scope {
        Scope::Member(n) if text.contains(n.as_str()) => format!(
            "{} is `{n}`: make it a member of the workspace at {} ([tool.uv.workspace] members), or set image.workspace",
            ctx.join("pyproject.toml").display(),
            ws.root.display()
        ),
        _ => format!(
            "run `uv export --locked` in {} to see why",
            ws.root.display()
        ),
    };
    InputError::new(lock, format!("uv export failed: {text}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_member_with_an_empty_closure_is_said() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(
            root.join("pyproject.toml"),
            "[project]\nname = \"ws\"\ndependencies = [\"pandas\"]\n[tool.uv.workspace]\nmembers = [\"p/*\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("p/a")).unwrap();
        std::fs::write(root.join("p/a/pyproject.toml"), "[project]\nname = \"a\"\n").unwrap();
        let ws = Workspace {
            root: root.to_path_buf(),
            scope: Scope::Member("a".into()),
        };
        let export = root.join("export.txt");
        std::fs::write(&export, "--index-url https://example.org/simple\n").unwrap();
        let w = empty_member(&root.join("p/a"), &ws, &export).expect("said");
        assert!(
            w.contains("`a` is no package") && w.contains("1 dependencies"),
            "{w}"
        );
        std::fs::write(&export, "pandas==2.2.3\n").unwrap();
        assert_eq!(empty_member(&root.join("p/a"), &ws, &export), None);
        let root_scope = Workspace {
            root: root.to_path_buf(),
            scope: Scope::Root,
        };
        std::fs::write(&export, "").unwrap();
        assert_eq!(empty_member(root, &root_scope, &export), None);
    }

    #[test]
    fn a_member_finds_its_workspace_above_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("flows/etl")).unwrap();
        std::fs::write(
            root.join("pyproject.toml"),
            "[tool.uv.workspace]\nmembers = [\"flows/*\"]\n",
        )
        .unwrap();
        std::fs::write(root.join("uv.lock"), "version = 1\n").unwrap();
        std::fs::write(
            root.join("flows/etl/pyproject.toml"),
            "[project]\nname = \"etl\"\n",
        )
        .unwrap();
        let ws = workspace_of(&root.join("flows/etl"), None)
            .unwrap()
            .unwrap();
        assert_eq!(ws.root, root);
        assert_eq!(ws.scope, Scope::Member("etl".into()));
        std::fs::create_dir_all(root.join("flows/plain")).unwrap();
        let all = workspace_of(&root.join("flows/plain"), None)
            .unwrap()
            .unwrap();
        assert_eq!(all.scope, Scope::All);
        assert_eq!(
            workspace_of(root, None).unwrap().unwrap().scope,
            Scope::Root
        );
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(workspace_of(elsewhere.path(), None).unwrap(), None);
        let e = workspace_of(elsewhere.path(), Some(elsewhere.path())).unwrap_err();
        assert!(e.hint.contains("image.workspace"), "{e:?}");
    }
}
