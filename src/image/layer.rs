//! Reproducible layers: the same files give the same bytes on any machine. Entries sorted by path, parent
//! directories present, uid/gid 0 with empty names, one fixed mtime (`SOURCE_DATE_EPOCH` or the commit time),
//! modes normalised (0755 for directories and executables, 0644 otherwise, 1777 for a shared `/tmp`), no device numbers or extended
//! headers; gzip by flate2's pure-Rust backend (miniz_oxide, version pinned by Cargo.lock) at level 1, with
//! an empty header (mtime 0, no name, OS 255). A different compressor or level would change every layer
//! digest and defeat registry dedup; the diff_id (uncompressed) would not change.

use flate2::Compression;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One file or directory in the layer, by its path inside the image (no leading `/`).
#[derive(Debug, Clone)]
pub enum Entry {
    Dir,
    /// A directory anyone may write to, with the sticky bit (`/tmp`: mode 1777).
    SharedDir,
    File {
        source: PathBuf,
        executable: bool,
    },
    /// A file made here (`/etc/passwd` of an image from scratch).
    Data {
        bytes: Vec<u8>,
        executable: bool,
    },
    /// A symlink whose target stays inside the layer (checked by whoever built the list).
    Symlink {
        target: String,
    },
}

#[derive(Debug, Clone)]
pub struct Layer {
    /// The `.tar.gz` on disk.
    pub path: PathBuf,
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
}

/// Counts and hashes what passes through.
struct Tee<W: Write> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write `entries` as a reproducible `.tar.gz` at `out`, in one pass computing digest and diff_id.
pub fn write(entries: &BTreeMap<String, Entry>, mtime: u64, out: &Path) -> std::io::Result<Layer> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let compressed = Tee {
        inner: file,
        hash: Sha256::new(),
        len: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, Compression::new(1));
    let uncompressed = Tee {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    };
    let mut tar = tar::Builder::new(uncompressed);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in with_parents(entries) {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("")?;
        h.set_groupname("")?;
        match &entry {
            Entry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::SharedDir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o1777);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::Data { bytes, executable } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &path, bytes.as_slice())?;
            }
            Entry::File { source, executable } => {
                let f = std::fs::File::open(source)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(f.metadata()?.len());
                tar.append_data(&mut h, &path, std::io::BufReader::new(f))?;
            }
            Entry::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, &path, target)?;
            }
        }
    }
    let uncompressed = tar.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(uncompressed.hash.finalize()));
    let mut compressed = uncompressed.inner.finish()?;
    compressed.flush()?;
    let digest = format!("sha256:{}", hex::encode(compressed.hash.finalize()));
    Ok(Layer {
        path: out.to_path_buf(),
        digest,
        diff_id,
        size: compressed.len,
    })
}

/// The entries with every parent directory added, sorted (BTreeMap order: `a` < `a/b` < `a/b/c` < `ab`).
fn with_parents(entries: &BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    let mut all = entries.clone();
    for path in entries.keys() {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            all.entry(parent.to_string()).or_insert(Entry::Dir);
            p = parent;
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_same_digest_whatever_the_mtime_and_mode_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.py");
        std::fs::write(&f, "print(1)\n").unwrap();
        let entries = BTreeMap::from([(
            "opt/app/a.py".to_string(),
            Entry::File {
                source: f.clone(),
                executable: false,
            },
        )]);
        let one = write(&entries, 0, &dir.path().join("1.tgz")).unwrap();
        // Another mtime on disk, set explicitly (no sleeping to let the clock move).
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567),
            )
            .unwrap();
        let two = write(&entries, 0, &dir.path().join("2.tgz")).unwrap();
        assert_eq!(one.digest, two.digest);
        assert_eq!(one.diff_id, two.diff_id);
        let three = write(&entries, 1, &dir.path().join("3.tgz")).unwrap();
        assert_ne!(one.diff_id, three.diff_id, "the mtime is part of the layer");
        // Parents are present, in order, owned by root.
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&one.path).unwrap(),
        ));
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["opt/", "opt/app/", "opt/app/a.py"]);
    }
}
