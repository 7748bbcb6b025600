//! The build machine's own cache (`cache.dir`, default `$XDG_CACHE_HOME/flowship` or `~/.cache/flowship`):
//! what a build made from local inputs and can make again only slowly (a local package's wheel, the project
//! layer's installed files, a lock's export), kept by a key that covers the content of everything it was made
//! from. Nothing in it is trusted beyond its key: an entry is written to a temporary name and renamed into
//! place, so a reader sees a whole entry or none; a missing or unreadable cache only makes a build slower.
//! The dependency layer's cache is the registry's (`build/cache.rs`), which CI jobs on other machines share.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One kind of entry: `wheels`, `project`, `export`, `sources`.
#[derive(Debug, Clone)]
pub struct Local {
    root: PathBuf,
}

impl Local {
    /// The cache under `dir` (`None` when no cache directory is known: every lookup misses).
    pub fn at(dir: Option<&Path>) -> Option<Self> {
        dir.map(|d| Self {
            root: d.join("build"),
        })
    }

    fn path(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join(kind).join(key)
    }

    /// The entry `kind/key` when it is there.
    pub fn get(&self, kind: &str, key: &str) -> Option<PathBuf> {
        let p = self.path(kind, key);
        p.exists().then_some(p)
    }

    /// Keep a copy of the file or directory `from` as `kind/key` (an existing entry is kept: same key, same
    /// content). Failures are ignored: the cache only saves time.
    pub fn put(&self, kind: &str, key: &str, from: &Path) {
        let dest = self.path(kind, key);
        if dest.exists() {
            return;
        }
        let Some(dir) = dest.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Some(root) = self.root.parent() {
            mark(root);
        }
        let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let copied = if from.is_dir() {
            copy_dir(from, &tmp)
        } else {
            std::fs::copy(from, &tmp).map(|_| ())
        };
        if copied.is_err() || std::fs::rename(&tmp, &dest).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Keep `bytes` as `kind/key`.
    pub fn put_bytes(&self, kind: &str, key: &str, bytes: &[u8]) {
        let Ok(tmp) = tempfile::NamedTempFile::new() else {
            return;
        };
        if std::fs::write(tmp.path(), bytes).is_ok() {
            self.put(kind, key, tmp.path());
        }
    }
}

/// The Cache Directory Tagging Specification's signature (<https://bford.info/cachedir/>), which tar
/// (`--exclude-caches`), backup tools, uv and pip honour too.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// Tag `dir` as a cache: a cache directory inside a build context (GitLab CI caches only paths inside the
/// project) is then left out of the code layer and of a package's fingerprint.
pub fn mark(dir: &Path) {
    let tag = dir.join("CACHEDIR.TAG");
    if !tag.exists() {
        let _ = std::fs::write(
            tag,
            format!("{CACHEDIR_TAG}\n# This file is a cache directory tag created by flowship.\n"),
        );
    }
}

/// Is `dir` a tagged cache directory (flowship's, uv's, pip's…)?
pub fn is_tagged(dir: &Path) -> bool {
    std::fs::read(dir.join("CACHEDIR.TAG")).is_ok_and(|b| b.starts_with(CACHEDIR_TAG.as_bytes()))
}

/// Copy a directory tree (files, directories, symlinks as links).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            copy_dir(&src, &dst)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// SHA-256 of a file's content, streamed (a wheel or a package file can be large).
pub fn file_digest(path: &Path) -> Option<[u8; 32]> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(h.finalize().into())
}

/// A key from parts: SHA-256 of each part, length-prefixed so that no two lists of parts collide.
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(kind: &str) -> Self {
        let mut k = Self(Sha256::new());
        k.add(kind.as_bytes());
        k
    }

    pub fn add(&mut self, part: &[u8]) -> &mut Self {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_whole_and_kept_once() {
        let d = tempfile::tempdir().unwrap();
        let c = Local::at(Some(d.path())).unwrap();
        assert!(c.get("wheels", "k").is_none());
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("pkg")).unwrap();
        std::fs::write(src.join("pkg/a.py"), "A = 1\n").unwrap();
        c.put("project", "k", &src);
        let got = c.get("project", "k").unwrap();
        assert_eq!(std::fs::read(got.join("pkg/a.py")).unwrap(), b"A = 1\n");
        c.put_bytes("export", "k", b"one\n");
        c.put_bytes("export", "k", b"two\n");
        assert_eq!(
            std::fs::read(c.get("export", "k").unwrap()).unwrap(),
            b"one\n"
        );
        let names: Vec<_> = std::fs::read_dir(d.path().join("build/export"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        assert!(is_tagged(d.path()), "the cache says it is one");
        assert!(!is_tagged(&d.path().join("build")));
    }

    #[test]
    fn keys_do_not_collide_across_part_boundaries() {
        let mut a = Key::new("x");
        a.add(b"ab").add(b"c");
        let mut b = Key::new("x");
        b.add(b"a").add(b"bc");
        assert_ne!(a.finish(), b.finish());
    }
}
