//! The project's Python inputs, turned into what an image build installs: one requirements file of packages
//! from the index (the dependency layer, cached in the registry) and the local packages to build into wheels
//! (the project itself, workspace members, path dependencies: the project layer, rebuilt with the code).
//! Reads files and runs `uv export`; installs nothing (that is `deps` and `wheels`).
//!
//! Which input is used, first found wins: the requirements file given (`image.requirements`, else the
//! context's `requirements.txt`), `uv.lock` (the context's, or its uv workspace's), `poetry.lock`,
//! `pylock.toml`.

mod local;
mod poetry;
mod pylock;
mod uv;

pub use local::is_package;
use std::path::{Path, PathBuf};

/// What to install, and where it came from.
#[derive(Debug, Default)]
pub struct Chosen {
    /// Requirements from the index (local directories taken out), for the dependency layer.
    pub requirements: Option<PathBuf>,
    /// Local packages, built as wheels into the project layer (never editable).
    pub local: Vec<PathBuf>,
    /// The file the dependencies came from (`requirements.txt`, `uv.lock`, …), for narration.
    pub from: Option<String>,
    /// What the choice decided, for narration.
    pub notes: Vec<String>,
    /// What the user must hear even without `-v` (a lock that could not be checked, a local directory that
    /// is not a package).
    pub warnings: Vec<String>,
    /// Directories besides the context whose `requires-python` the image's Python must meet.
    pub python_from: Vec<PathBuf>,
    /// The uv project's own indexes, `(name, url)`, for their credentials' variables.
    pub indexes: Vec<(String, String)>,
}

pub struct Request<'a> {
    pub context: &'a Path,
    /// The requirements file from the settings (given, or the context's `requirements.txt`).
    pub requirements: Option<&'a Path>,
    /// `image.workspace`: the uv workspace root the context is a member of.
    pub workspace: Option<&'a Path>,
    /// `PATH`, to find `uv`.
    pub path: Option<&'a str>,
    /// Where exported and rewritten requirement files go.
    pub scratch: &'a Path,
    /// The build machine's cache (`cache.dir`): a lock's export is kept there by what it was made from.
    pub cache: Option<&'a Path>,
    /// Where the installer takes packages from ([`crate::image::deps::index_config`]): part of the export's
    /// key.
    pub index: &'a str,
}

/// Bad input: what is wrong, in which file, and the fix. Exit 2, nothing written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub message: String,
    pub hint: String,
}

impl InputError {
    fn new(file: &Path, message: impl std::fmt::Display, hint: impl Into<String>) -> Self {
        Self {
            message: format!("{}: {message}", file.display()),
            hint: hint.into(),
        }
    }
}

/// The inputs of `req`'s project (see the module's order).
pub fn choose(req: &Request) -> Result<Chosen, InputError> {
    let ctx = req.context;
    let mut extra = Chosen::default();
    // `image.requirements` may name a lock itself (`uv.lock`, `poetry.lock`, `pylock.toml`): read as one.
    let given_lock = req
        .requirements
        .filter(|r| LOCKS.contains(&file_name(r).as_str()));
    let (file, base, from) = if let Some(lock) = given_lock {
        let dir = lock.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        lock_input(req, &file_name(lock), dir, &mut extra)?
    } else if let Some(r) = req.requirements {
        let base = r.parent().unwrap_or(Path::new(".")).to_path_buf();
        (r.to_path_buf(), base, file_name(r))
    } else if let Some(ws) = uv::workspace_of(ctx, req.workspace)? {
        uv_input(req, &ws, &mut extra)?
    } else if let Some(lock) = LOCKS[1..].iter().find(|l| ctx.join(l).is_file()) {
        lock_input(req, lock, ctx, &mut extra)?
    } else {
        if let Some(declared) = crate::image::project::undeclared_install(ctx) {
            return Err(InputError {
                message: format!(
                    "{}/{declared} declares dependencies, but there is no requirements file: the image would have none",
                    ctx.display()
                ),
                hint: "export them into requirements.txt (`uv export --frozen --no-dev --no-hashes --no-editable -o requirements.txt`), lock them (`uv lock`, `poetry lock`), or pass --requirements FILE (an empty file builds without them)".into(),
            });
        }
        let mut chosen = Chosen::default();
        if is_package(ctx) {
            chosen.local.push(absolute(ctx));
        }
        return Ok(chosen);
    };
    let mut split = local::split(&file, &base, &req.scratch.join("index-requirements.txt"))?;
    // A requirements file that names a local package (`.`, `./lib`) asks for it *with* its dependencies,
    // which no lock pins here: they go to the index's installer, as pip would take them.
    if !from.ends_with(".lock") && from != "pylock.toml" && !split.local.is_empty() {
        split.requirements = local::with_declared(&split, &req.scratch.join("with-declared.txt"))?;
    }
    let mut chosen = Chosen {
        requirements: Some(split.requirements),
        from: Some(from),
        ..extra
    };
    // The project itself first, when it is a package (a lock export names it too; once is enough).
    let mut dirs = vec![absolute(ctx)];
    dirs.extend(split.local);
    for d in dirs {
        if chosen.local.contains(&d) {
            continue;
        }
        if is_package(&d) {
            chosen.local.push(d);
        } else if d != absolute(ctx) {
            chosen.warnings.push(format!(
                "{}: named as a package, but it is none (no [build-system] and no setup.py); not installed",
                d.display()
            ));
        }
    }
    Ok(chosen)
}

/// The locks flowship reads, in the order it looks for them.
const LOCKS: [&str; 3] = ["uv.lock", "poetry.lock", "pylock.toml"];

/// `(requirements file, the directory its relative paths start from, what it came from)`.
type Input = (PathBuf, PathBuf, String);

fn uv_input(req: &Request, ws: &uv::Workspace, extra: &mut Chosen) -> Result<Input, InputError> {
    let out = req.scratch.join("uv-export.txt");
    extra.warnings.extend(uv::export(req, ws, &out)?);
    extra
        .warnings
        .extend(uv::empty_member(req.context, ws, &out));
    if ws.root != absolute(req.context) {
        extra.python_from.push(ws.root.clone());
    }
    extra.indexes = uv::configured_indexes(ws);
    Ok((out, ws.root.clone(), "uv.lock".to_string()))
}

/// The lock `name` in `dir`, as requirements.
fn lock_input(
    req: &Request,
    name: &str,
    dir: &Path,
    extra: &mut Chosen,
) -> Result<Input, InputError> {
    match name {
        "uv.lock" => {
            let ws = uv::workspace_of(req.context, Some(dir))?.expect("a named root is found");
            uv_input(req, &ws, extra)
        }
        "poetry.lock" => {
            let out = req.scratch.join("poetry-lock.txt");
            poetry::requirements(dir, &out)?;
            Ok((out, dir.to_path_buf(), name.to_string()))
        }
        _ => {
            let out = req.scratch.join("pylock.txt");
            pylock::requirements(&dir.join(name), &out)?;
            Ok((out, dir.to_path_buf(), name.to_string()))
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

/// `p` absolute and without `.`/`..` (so one directory named two ways is one package).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}
