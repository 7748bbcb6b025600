//! What the base image holds that decides what may be installed on it: its Python interpreters, its libc,
//! its shared libraries and its installed Python distributions. Read from the base's layers (streamed
//! through the registry session, never unpacked to disk), summarised as a small [`BaseIndex`], and cached
//! as JSON under the cache directory by the layers' digests, so a second build reads no base layer. Must not
//! run anything from the image, nor decide what to do about what it finds (that is the build's job).

pub mod dists;
pub mod fit;
pub mod needs;
mod scan;

use crate::registry::blobs::Descriptor;
use crate::registry::repo::Repo;
use scan::{Item, Items};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The base's C library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Libc {
    /// glibc, with its `2.36` when the base's `libc.so.6` says it.
    Glibc {
        version: Option<String>,
    },
    Musl,
}

/// A Python distribution installed in the base.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// The `site-packages`/`dist-packages` directory holding it (no leading `/`).
    pub site: String,
}

/// The summary of a base image's layers (paths without a leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseIndex {
    /// `…/bin/python*` files and symlinks: the path, and the symlink's target (`None` for a file).
    pub pythons: BTreeMap<String, Option<String>>,
    /// Directories holding a `pyvenv.cfg`.
    pub venvs: BTreeSet<String>,
    pub libc: Option<Libc>,
    /// File names of the shared libraries in the standard library directories.
    pub libraries: BTreeSet<String>,
    pub dists: Vec<Dist>,
}

/// The Python the image runs: `python3` on its `PATH`, resolved through its symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    /// `3.11`.
    pub version: String,
    /// `usr/bin/python3.11`: the interpreter the links end at.
    pub interpreter: String,
    /// Where its packages are: the virtualenv it belongs to, else its installation prefix (`usr`).
    pub prefix: String,
    pub venv: bool,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl BaseIndex {
    fn from_items(items: Items) -> Self {
        let mut index = BaseIndex::default();
        let mut glibc: Option<Option<String>> = None;
        for (path, item) in items {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            match item {
                Item::Python(target) => {
                    index.pythons.insert(path.clone(), target);
                }
                Item::Venv => {
                    index.venvs.insert(dir.to_string());
                }
                Item::Musl => index.libc = Some(Libc::Musl),
                Item::Library { glibc: v } => {
                    if name == "libc.so.6" || v.is_some() {
                        glibc = Some(glibc.flatten().or(v));
                    }
                    index.libraries.insert(name.to_string());
                }
                Item::Dist { name, version } => {
                    let site = dir.rsplit_once('/').map_or("", |(s, _)| s).to_string();
                    index.dists.push(Dist {
                        name,
                        version,
                        site,
                    });
                }
            }
        }
        if index.libc.is_none() {
            index.libc = glibc.map(|version| Libc::Glibc { version });
        }
        index.dists.sort();
        index
    }

    /// The image's `python3`: the first on `path` (the image's `PATH`), else `/usr/local/bin/python3.X`,
    /// else `/usr/bin/python3.X`. `None`: the base has no Python.
    pub fn python(&self, path: Option<&str>) -> Option<Python> {
        let dirs = path.unwrap_or(DEFAULT_PATH).split(':');
        for dir in dirs.map(|d| d.trim_matches('/')).filter(|d| !d.is_empty()) {
            let start = format!("{dir}/python3");
            if !self.pythons.contains_key(&start) {
                continue;
            }
            let interpreter = self.resolve(&start);
            let Some(version) = self.version_of(&interpreter) else {
                continue;
            };
            let bin_parent = dir.rsplit_once('/').map_or("", |(p, _)| p);
            let venv = self.venvs.contains(bin_parent);
            let prefix = match venv {
                true => bin_parent.to_string(),
                false => prefix_of(&interpreter),
            };
            return Some(Python {
                version,
                interpreter,
                prefix,
                venv,
            });
        }
        ["usr/local/bin", "usr/bin"].iter().find_map(|dir| {
            let (path, version) = self
                .pythons
                .keys()
                .filter(|p| p.rsplit_once('/').is_some_and(|(d, _)| d == *dir))
                .filter_map(|p| Some((p.clone(), minor_of(p)?)))
                .max_by_key(|(_, v)| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()))?;
            Some(Python {
                version,
                prefix: prefix_of(&path),
                interpreter: path,
                venv: false,
            })
        })
    }

    /// Follow symlinks among the recorded interpreters (at most 16 hops).
    fn resolve(&self, start: &str) -> String {
        let mut at = start.to_string();
        for _ in 0..16 {
            let Some(Some(target)) = self.pythons.get(&at) else {
                break;
            };
            at = match target.strip_prefix('/') {
                Some(abs) => abs.to_string(),
                None => join(at.rsplit_once('/').map_or("", |(d, _)| d), target),
            };
        }
        at
    }

    /// `python3.11` → `3.11`; a plain `python3` file takes the highest `python3.X` beside it.
    fn version_of(&self, interpreter: &str) -> Option<String> {
        minor_of(interpreter).or_else(|| {
            let dir = interpreter.rsplit_once('/').map_or("", |(d, _)| d);
            self.pythons
                .keys()
                .filter(|p| p.rsplit_once('/').is_some_and(|(d, _)| d == dir))
                .filter_map(|p| minor_of(p))
                .max_by_key(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()))
        })
    }

    /// The distributions the image's Python imports from the base: those in the site directories of its
    /// virtualenv, or of its installation (Debian's `dist-packages` included).
    pub fn visible_dists(&self, py: &Python) -> Vec<&Dist> {
        let v = &py.version;
        let p = &py.prefix;
        let mut sites = vec![format!("{p}/lib/python{v}/site-packages")];
        if !py.venv {
            sites.push(format!("{p}/lib/python{v}/dist-packages"));
            sites.push(format!("{p}/lib/python3/dist-packages"));
            sites.push(format!("{p}/local/lib/python{v}/dist-packages"));
        }
        self.dists
            .iter()
            .filter(|d| sites.iter().any(|s| s.trim_start_matches('/') == d.site))
            .collect()
    }
}

/// `usr/bin/python3.11` → `3.11`.
fn minor_of(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let v = name.strip_prefix("python")?;
    let (major, minor) = v.split_once('.')?;
    (major == "3" && minor.parse::<u32>().is_ok()).then(|| v.to_string())
}

/// `usr/local/bin/python3.12` → `usr/local`.
fn prefix_of(interpreter: &str) -> String {
    let dir = interpreter.rsplit_once('/').map_or("", |(d, _)| d);
    dir.strip_suffix("/bin")
        .or_else(|| (dir == "bin").then_some(""))
        .unwrap_or(dir)
        .to_string()
}

/// `dir` + a relative link target, with `..` resolved.
fn join(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Why the index could not be read (the build goes on without it, saying so).
#[derive(Debug, thiserror::Error)]
#[error("layer {digest}: {reason}")]
pub struct IndexError {
    pub digest: String,
    pub reason: String,
}

/// The `*.dist-info` directories of an installed `site`, in name order.
pub(crate) fn dist_infos(site: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(site)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dist-info"))
        .collect();
    found.sort();
    found
}

/// The index of the base whose layers are `layers` (in order), from the cache directory when it holds it,
/// else read from the registry and stored there.
pub async fn index(
    repo: &Repo,
    layers: &[Descriptor],
    cache_dir: Option<&Path>,
) -> Result<BaseIndex, IndexError> {
    let file = cache_dir.map(|d| cache_file(d, layers));
    if let Some(cached) = file.as_deref().and_then(read_cached) {
        return Ok(cached);
    }
    let mut items = Items::new();
    for l in layers {
        items = read_layer(repo, l, items).await?;
    }
    let index = BaseIndex::from_items(items);
    if let Some(f) = file {
        // A cache that cannot be written costs the next build a read; it does not fail this one.
        let _ = write_cached(&f, &index);
    }
    Ok(index)
}

/// `<cache>/base-index/<sha256 of the layer digests>.json`.
fn cache_file(dir: &Path, layers: &[Descriptor]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"flowship-base-index-v1\n");
    for l in layers {
        h.update(l.digest.as_bytes());
        h.update(b"\n");
    }
    dir.join("base-index")
        .join(format!("{}.json", hex::encode(h.finalize())))
}

fn read_cached(file: &Path) -> Option<BaseIndex> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn write_cached(file: &Path, index: &BaseIndex) -> std::io::Result<()> {
    let dir = file.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir)?;
    if let Some(root) = dir.parent() {
        crate::image::cache::mark(root);
    }
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), serde_json::to_vec(index)?)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Stream one layer from the registry into a blocking tar reader (no file on disk), checking its digest.
async fn read_layer(repo: &Repo, layer: &Descriptor, items: Items) -> Result<Items, IndexError> {
    let fail = |reason: String| IndexError {
        digest: layer.digest.clone(),
        reason,
    };
    let mut resp = repo
        .blob(&layer.digest)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let reader = tokio::task::spawn_blocking(move || {
        let mut items = items;
        let mut reader = ChannelReader {
            rx,
            buf: None,
            pos: 0,
        };
        scan::layer(&mut reader, &mut items)?;
        // The tar reader stops at the end-of-archive block: the rest still counts for the digest.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| e.to_string())?;
        Ok(items)
    });
    let mut hash = Sha256::new();
    let mut pumped = Ok(());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                hash.update(&chunk);
                if tx.send(chunk).is_err() {
                    break; // the reader stopped: its error says why
                }
            }
            Ok(None) => break,
            Err(e) => {
                pumped = Err(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let read = reader.await.map_err(|e| fail(e.to_string()))?;
    pumped.map_err(&fail)?;
    let items = read.map_err(&fail)?;
    let got = format!("sha256:{}", hex::encode(hash.finalize()));
    if got != layer.digest {
        return Err(fail(format!("arrived as {got}")));
    }
    Ok(items)
}

/// The chunks of a download as a `Read` for the blocking tar reader; the sender's end is the end of data.
struct ChannelReader<T> {
    rx: std::sync::mpsc::Receiver<T>,
    buf: Option<T>,
    pos: usize,
}

impl<T: AsRef<[u8]>> std::io::Read for ChannelReader<T> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(b) = &self.buf {
                let rest = &b.as_ref()[self.pos..];
                if !rest.is_empty() {
                    let n = rest.len().min(out.len());
                    out[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = Some(b);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scan::tests::layer_of;
    use super::*;

    fn index_of(layers: &[Vec<u8>]) -> BaseIndex {
        let mut items = Items::new();
        for l in layers {
            scan::layer(&l[..], &mut items).unwrap();
        }
        BaseIndex::from_items(items)
    }

    #[test]
    fn the_python_on_path_is_followed_through_a_virtualenv() {
        let debian = layer_of(&[
            ("usr/bin/python3.11", "elf"),
            ("usr/bin/python3", "-> python3.11"),
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                "GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.",
            ),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                "Name: six\nVersion: 1.16.0\n",
            ),
        ]);
        let prefect = layer_of(&[
            ("opt/prefect/pyvenv.cfg", "home = /usr/bin\n"),
            ("opt/prefect/bin/python", "-> /usr/bin/python3"),
            ("opt/prefect/bin/python3", "-> python"),
            (
                "opt/prefect/lib/python3.11/site-packages/prefect-3.9.1.dist-info/METADATA",
                "Metadata-Version: 2.4\nName: prefect\nVersion: 3.9.1\n\nbody",
            ),
        ]);
        let index = index_of(&[debian.clone(), prefect]);
        assert_eq!(
            index.libc,
            Some(Libc::Glibc {
                version: Some("2.36".into())
            })
        );
        assert!(index.libraries.contains("libc.so.6"));
        let py = index
            .python(Some("/opt/prefect/bin:/usr/local/bin:/usr/bin"))
            .unwrap();
        assert_eq!(py.version, "3.11");
        assert_eq!(py.interpreter, "usr/bin/python3.11");
        assert!(py.venv);
        let seen: Vec<&str> = index
            .visible_dists(&py)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(
            seen,
            ["prefect"],
            "a virtualenv does not see the system's packages"
        );
        // Without the venv on PATH: the system's Python and its dist-packages.
        let py = index.python(Some("/usr/bin")).unwrap();
        assert!(!py.venv);
        let seen: Vec<&str> = index
            .visible_dists(&py)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(seen, ["six"]);
        // No python3 on PATH: the usual places.
        assert_eq!(index.python(Some("/nowhere")).unwrap().version, "3.11");
        assert_eq!(
            index_of(&[layer_of(&[("etc/os-release", "x")])]).python(None),
            None
        );
    }

    #[test]
    fn the_index_is_cached_by_the_layer_digests() {
        let d = tempfile::tempdir().unwrap();
        let layer = |digest: &str| Descriptor {
            media_type: "x".into(),
            digest: digest.into(),
            size: 1,
            platform: None,
            annotations: None,
            artifact_type: None,
        };
        let a = cache_file(d.path(), &[layer("sha256:a"), layer("sha256:b")]);
        assert_ne!(
            a,
            cache_file(d.path(), &[layer("sha256:b"), layer("sha256:a")])
        );
        let index = index_of(&[layer_of(&[("usr/bin/python3.12", "elf")])]);
        write_cached(&a, &index).unwrap();
        assert_eq!(read_cached(&a), Some(index));
    }
}
