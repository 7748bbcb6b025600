//! The flow's sources for the code layer: every file under the context directory, minus what
//! `.dockerignore` / `.flowshipignore` exclude (Docker's syntax: globs from the context root, `**`, `!` to
//! re-include, `#` comments) and minus `.git`, Python caches and directories tagged as caches
//! (`CACHEDIR.TAG`: flowship's own cache kept in a CI checkout). Symlinks are kept as symlinks when they
//! point inside the context and skipped, with a warning, when they point outside: the layer never carries a
//! file from outside the context.

use super::layer::Entry;
use globset::{Glob, GlobMatcher};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{}:{line}: `{pattern}` is not a valid pattern: {reason}", file.display())]
    Pattern {
        file: PathBuf,
        line: usize,
        pattern: String,
        reason: String,
    },
}

struct Rule {
    matcher: GlobMatcher,
    include: bool,
}

const DEFAULT_IGNORES: &[&str] = &[
    ".git",
    "**/__pycache__",
    "**/*.pyc",
    ".dockerignore",
    ".flowshipignore",
];

fn rules(context: &Path) -> Result<Vec<Rule>, ContextError> {
    let mut out = Vec::new();
    for p in DEFAULT_IGNORES {
        out.push(Rule {
            matcher: Glob::new(p).expect("valid").compile_matcher(),
            include: false,
        });
    }
    for name in [".dockerignore", ".flowshipignore"] {
        let file = context.join(name);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = pattern
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| ContextError::Pattern {
                    file: file.clone(),
                    line: i + 1,
                    pattern: pattern.into(),
                    reason: e.to_string(),
                })?;
            out.push(Rule {
                matcher: glob.compile_matcher(),
                include,
            });
        }
    }
    Ok(out)
}

/// Docker's rule: the last matching pattern wins; a path is also excluded when a parent directory is.
fn excluded(rules: &[Rule], rel: &str) -> bool {
    let mut verdict = false;
    for r in rules {
        if r.matcher.is_match(rel) {
            verdict = !r.include;
        }
    }
    verdict
}

/// Files under `context`, placed under `dest` (a path inside the image, no leading `/`). Returns the entries
/// and warnings for skipped symlinks.
pub fn collect(
    context: &Path,
    dest: &str,
) -> Result<(BTreeMap<String, Entry>, Vec<String>), ContextError> {
    let rules = rules(context)?;
    let mut entries = BTreeMap::new();
    let mut warnings = Vec::new();
    let io = |p: &Path, e: std::io::Error| ContextError::Io {
        path: p.into(),
        reason: e.to_string(),
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let dir = context.join(&rel_dir);
        let mut children: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io(&dir, e))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let rel = rel_dir.join(child.file_name());
            let rel_str = rel.to_string_lossy().replace('\\', "/");
            if excluded(&rules, &rel_str) {
                continue;
            }
            let in_image = format!("{dest}/{rel_str}");
            let ft = child.file_type().map_err(|e| io(&rel, e))?;
            if ft.is_symlink() {
                let target = std::fs::read_link(child.path()).map_err(|e| io(&rel, e))?;
                if stays_inside(&rel, &target) {
                    entries.insert(
                        in_image,
                        Entry::Symlink {
                            target: target.to_string_lossy().into_owned(),
                        },
                    );
                } else {
                    warnings.push(format!(
                        "skipped {rel_str}: a symlink to {} outside the build context",
                        target.display()
                    ));
                }
            } else if ft.is_dir() && super::cache::is_tagged(&child.path()) {
                // A cache directory (flowship's own `cache.dir`, uv's, pip's) kept inside the checkout, as
                // GitLab CI's `cache:` requires: never part of the code.
                continue;
            } else if ft.is_dir() {
                entries.insert(in_image, Entry::Dir);
                stack.push(rel);
            } else if ft.is_file() && flowship_artifact(&child.path()) {
                // A saved plan or a dotenv report restored into the checkout by a later CI job must not
                // change the code layer (a plan would then never apply: its image would differ).
                warnings.push(format!(
                    "skipped {rel_str}: flowship's own output (a saved plan or dotenv report) never enters an image"
                ));
            } else if ft.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let mode = child
                    .metadata()
                    .map_err(|e| io(&rel, e))?
                    .permissions()
                    .mode();
                entries.insert(
                    in_image,
                    Entry::File {
                        source: child.path(),
                        executable: mode & 0o111 != 0,
                    },
                );
            }
        }
    }
    Ok((entries, warnings))
}

/// A file flowship wrote: a saved plan (`{"flowship_plan": …`), a dotenv report of its variables
/// (`FLOWSHIP_IMAGE=…`), or one of their temporary files. Known by content, since users name them.
fn flowship_artifact(path: &Path) -> bool {
    use std::io::Read;
    if path.extension().is_some_and(|e| e == "flowship-tmp") {
        return true;
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    let compact: String = head.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with("{\"flowship_plan\":") || head.starts_with("FLOWSHIP_IMAGE=")
}

/// Does a relative symlink at `link` (relative to the context) resolve inside the context?
fn stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("flows/__pycache__")).unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::write(p.join("flows/etl.py"), "x").unwrap();
        std::fs::write(p.join("flows/__pycache__/etl.pyc"), "x").unwrap();
        std::fs::write(p.join("notes.md"), "x").unwrap();
        std::fs::write(p.join("keep.md"), "x").unwrap();
        std::fs::write(p.join(".git/HEAD"), "x").unwrap();
        std::fs::write(p.join(".dockerignore"), "# docs\n*.md\n!keep.md\n").unwrap();
        // flowship's cache kept in the checkout (GitLab CI's `cache:`), tagged as a cache.
        std::fs::create_dir_all(p.join(".flowship-cache/build")).unwrap();
        std::fs::write(p.join(".flowship-cache/build/x.whl"), "x").unwrap();
        crate::image::cache::mark(&p.join(".flowship-cache"));
        std::os::unix::fs::symlink("etl.py", p.join("flows/alias.py")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("flows/passwd")).unwrap();
        std::os::unix::fs::symlink("../../outside", p.join("flows/escape")).unwrap();
        let (entries, warnings) = collect(p, "opt/prefect/app").unwrap();
        let names: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "opt/prefect/app/flows",
                "opt/prefect/app/flows/alias.py",
                "opt/prefect/app/flows/etl.py",
                "opt/prefect/app/keep.md"
            ]
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn flowships_own_output_never_enters_the_context() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("flow.py"), "x").unwrap();
        std::fs::write(
            p.join("plan.json"),
            "{\n  \"flowship_plan\": 1,\n  \"created\": 1\n}\n",
        )
        .unwrap();
        std::fs::write(
            p.join("build.env"),
            "FLOWSHIP_IMAGE=h.example.com/a:1@sha256:ab\n",
        )
        .unwrap();
        std::fs::write(p.join("data.json"), "{\"plan\": 1}").unwrap();
        let (entries, warnings) = collect(p, "app").unwrap();
        let names: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["app/data.json", "app/flow.py"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
