//! `pylock.toml` (PEP 751) as pinned requirements: each `[[packages]]` entry is `name==version ; marker`
//! with the hashes of its wheels and sdist; `directory` entries come out as paths (built as wheels), `vcs`
//! and `archive` ones as direct references. Read here rather than handed to the installer: pip cannot read
//! it, and the dependency layer needs the local packages taken out either way.

use super::InputError;
use std::path::Path;
use toml::Value;

fn hashes(v: Option<&Value>) -> Vec<String> {
    let one = |x: &Value| -> Vec<String> {
        x.get("hashes")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
            .filter_map(|(alg, h)| Some(format!(" --hash={alg}:{}", h.as_str()?)))
            .collect()
    };
    match v {
        Some(Value::Array(a)) => a.iter().flat_map(one).collect(),
        Some(x) => one(x),
        None => Vec::new(),
    }
}

/// One requirement line for an entry, or `None` for one that only an extra or a dependency group asks for
/// (flowship installs neither).
fn line(dir: &Path, p: &toml::Table) -> Option<String> {
    let s = |t: &toml::Table, k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
    let name = s(p, "name")?;
    let marker = s(p, "marker");
    if marker
        .as_deref()
        .is_some_and(|m| m.contains("dependency_groups") || m.contains("extras"))
    {
        return None;
    }
    let m = marker.map(|m| format!(" ; {m}")).unwrap_or_default();
    let table = |k: &str| p.get(k).and_then(Value::as_table);
    if let Some(d) = table("directory") {
        let path = s(d, "path").unwrap_or_else(|| ".".into());
        return Some(if path.starts_with('/') || path.starts_with('.') {
            path
        } else {
            format!("./{path}")
        });
    }
    if let Some(v) = table("vcs") {
        let url = s(v, "url").or_else(|| s(v, "path"))?;
        let rev = s(v, "commit-id").or_else(|| s(v, "requested-revision"));
        let rev = rev.map(|r| format!("@{r}")).unwrap_or_default();
        let sub = s(v, "subdirectory")
            .map(|d| format!("#subdirectory={d}"))
            .unwrap_or_default();
        return Some(format!("{name} @ git+{url}{rev}{sub}{m}"));
    }
    if let Some(a) = table("archive") {
        let url = match (s(a, "url"), s(a, "path")) {
            (Some(u), _) => u,
            (None, Some(path)) => format!("file://{}", dir.join(path).display()),
            (None, None) => return None,
        };
        return Some(format!(
            "{name} @ {url}{m}{}",
            hashes(p.get("archive")).concat()
        ));
    }
    let version = s(p, "version")?;
    let mut h = hashes(p.get("wheels"));
    h.extend(hashes(p.get("sdist")));
    Some(format!("{name}=={version}{m}{}", h.concat()))
}

/// `lock` as a requirements file at `out`.
pub(super) fn requirements(lock: &Path, out: &Path) -> Result<(), InputError> {
    let doc: toml::Table = std::fs::read_to_string(lock)
        .map_err(|e| e.to_string())
        .and_then(|t| t.parse().map_err(|e: toml::de::Error| e.to_string()))
        .map_err(|e| InputError::new(lock, e, "fix the file (PEP 751 TOML), or export it again"))?;
    let version = doc
        .get("lock-version")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !version.starts_with("1.") {
        return Err(InputError::new(
            lock,
            format!("lock-version `{version}` is not one flowship reads (1.x)"),
            "export it again (`uv export --format pylock.toml -o pylock.toml`), or pass --requirements FILE",
        ));
    }
    let dir = lock.parent().unwrap_or(Path::new("."));
    let mut text = String::from("# from pylock.toml by flowship\n");
    for p in doc
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
    {
        if let Some(l) = line(dir, p) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    std::fs::write(out, text).map_err(|e| InputError::new(out, e, "check the temporary directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_become_pinned_lines_and_directories_paths() {
        let d = tempfile::tempdir().unwrap();
        let lock = d.path().join("pylock.toml");
        std::fs::write(
            &lock,
            r#"lock-version = "1.0"
created-by = "uv"
[[packages]]
name = "six"
version = "1.16.0"
index = "https://example.invalid/simple"
sdist = { url = "https://example.invalid/six.tar.gz", hashes = { sha256 = "bb" } }
wheels = [{ url = "https://example.invalid/six.whl", hashes = { sha256 = "aa" } }]
[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
wheels = [{ url = "https://example.invalid/c.whl", hashes = { sha256 = "cc" } }]
[[packages]]
name = "pytest"
version = "8.0.0"
marker = "'dev' in dependency_groups"
[[packages]]
name = "proj"
directory = { path = ".", editable = true }
[[packages]]
name = "lib"
vcs = { type = "git", url = "https://example.invalid/lib.git", commit-id = "abc" }
"#,
        )
        .unwrap();
        let out = d.path().join("r.txt");
        requirements(&lock, &out).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("six==1.16.0 --hash=sha256:aa --hash=sha256:bb\n"),
            "{text}"
        );
        assert!(
            text.contains("colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:cc\n"),
            "{text}"
        );
        assert!(!text.contains("pytest"), "{text}");
        assert!(text.contains("\n.\n"), "{text}");
        assert!(
            text.contains("lib @ git+https://example.invalid/lib.git@abc\n"),
            "{text}"
        );
        std::fs::write(&lock, "lock-version = \"2.0\"\n").unwrap();
        assert!(
            requirements(&lock, &out)
                .unwrap_err()
                .message
                .contains("2.0")
        );
    }
}
