//! Reading one layer's tar stream for what the base index records, and stacking layers the way a container
//! runtime does: an upper layer's entry replaces the lower one at its path, `.wh.NAME` deletes `NAME` (and
//! what is under it) from the layers below, `.wh..wh..opq` empties its directory of the layers below.
//! Only the few paths the index cares about are kept, so a 500 MB layer costs a pass, not memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// What one interesting path of the image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    /// `…/bin/python`, `python3`, `python3.X`: a symlink's target, or `None` for a file.
    Python(Option<String>),
    /// A `pyvenv.cfg`: its directory is a virtualenv.
    Venv,
    /// A shared library in a standard library directory; `libc.so.6` with the glibc version its bytes state.
    Library { glibc: Option<String> },
    /// musl's loader (`/lib/ld-musl-x86_64.so.1`).
    Musl,
    /// An installed distribution's metadata: `(Name, Version)`.
    Dist { name: String, version: String },
}

/// The stacked items of the layers read so far, by path (no leading `/`).
pub(super) type Items = BTreeMap<String, Item>;

/// Read one layer (gzip or plain tar) onto `below`.
pub(super) fn layer(reader: impl Read, below: &mut Items) -> Result<(), String> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let head = reader.fill_buf().map_err(|e| e.to_string())?;
    match head {
        // Multi-member: Go's parallel gzip (umoci, some registries' tools) writes one member per block.
        [0x1f, 0x8b, ..] => entries(flate2::read::MultiGzDecoder::new(reader), below),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => entries(ZstdFrames::new(reader), below),
        _ => entries(reader, below),
    }
}

/// A zstd stream of any number of frames as one `Read`: containers' `zstd:chunked` writes a frame per chunk
/// and skippable frames holding its table of contents; ruzstd's own reader stops after one frame.
struct ZstdFrames<R: Read> {
    source: R,
    frame: ruzstd::decoding::FrameDecoder,
    active: bool,
}

impl<R: Read> ZstdFrames<R> {
    fn new(source: R) -> Self {
        Self {
            source,
            frame: ruzstd::decoding::FrameDecoder::new(),
            active: false,
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        use ruzstd::decoding::errors::{FrameDecoderError as F, ReadFrameHeaderError as H};
        loop {
            if self.active {
                if self.frame.can_collect() == 0 && !self.frame.is_finished() {
                    self.frame
                        .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(std::io::Error::other)?;
                    continue;
                }
                let n = self.frame.read(out)?;
                if n > 0 || out.is_empty() {
                    return Ok(n);
                }
                self.active = false;
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => self.active = true,
                Err(F::ReadFrameHeaderError(H::SkipFrame { length, .. })) => {
                    let mut skipped = (&mut self.source).take(u64::from(length));
                    std::io::copy(&mut skipped, &mut std::io::sink())?;
                }
                Err(F::ReadFrameHeaderError(H::MagicNumberReadError(e)))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(0);
                }
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    }
}

fn entries(reader: impl Read, below: &mut Items) -> Result<(), String> {
    // Zeros after the end: layers without the end-of-archive blocks (umoci writes them so, runtimes read
    // them) end cleanly; a complete archive ends before them.
    let mut archive = tar::Archive::new(reader.chain(std::io::repeat(0).take(1536)));
    let mut added = Items::new();
    let mut deleted: Vec<String> = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path_bytes().into_owned();
        let path = clean(&String::from_utf8_lossy(&raw));
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            deleted.push(format!("{dir}/"));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            deleted.push(gone);
            continue;
        }
        // An entry of this layer replaces whatever a lower layer had at its path.
        if below.contains_key(&path) {
            deleted.push(path.clone());
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let kind = entry.header().entry_type();
        let symlink = kind.is_symlink().then_some(link).flatten();
        if let Some(item) = classify(dir, name, symlink, &mut entry)? {
            added.insert(path, item);
        }
    }
    // Whiteouts apply to the layers below only, whatever their order within this layer.
    for d in &deleted {
        let under = if d.ends_with('/') {
            d.clone()
        } else {
            format!("{d}/")
        };
        below.retain(|p, _| p != d && !p.starts_with(&under));
    }
    below.extend(added);
    Ok(())
}

/// `./usr/bin/` → `usr/bin`.
fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// The standard library directories (and their multiarch subdirectories, `usr/lib/x86_64-linux-gnu`).
fn is_library_dir(dir: &str) -> bool {
    const DIRS: [&str; 6] = [
        "lib",
        "lib64",
        "usr/lib",
        "usr/lib64",
        "usr/local/lib",
        "usr/local/lib64",
    ];
    DIRS.contains(&dir)
        || dir
            .rsplit_once('/')
            .is_some_and(|(parent, sub)| DIRS.contains(&parent) && sub.contains("-linux-"))
}

fn classify(
    dir: &str,
    name: &str,
    symlink: Option<String>,
    entry: &mut impl Read,
) -> Result<Option<Item>, String> {
    let in_bin = dir == "bin" || dir.ends_with("/bin");
    if in_bin && is_python_name(name) {
        return Ok(Some(Item::Python(symlink)));
    }
    if name == "pyvenv.cfg" {
        return Ok(Some(Item::Venv));
    }
    if is_library_dir(dir) {
        if name.starts_with("ld-musl-") && name.ends_with(".so.1") {
            return Ok(Some(Item::Musl));
        }
        if name == "libc.so.6" && symlink.is_none() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            return Ok(Some(Item::Library {
                glibc: glibc_of(&bytes),
            }));
        }
        // `libc-2.31.so` (glibc before 2.34 names its version in the file name).
        if let Some(v) = name
            .strip_prefix("libc-")
            .and_then(|r| r.strip_suffix(".so"))
        {
            return Ok(Some(Item::Library {
                glibc: Some(v.to_string()),
            }));
        }
        if name.contains(".so") {
            return Ok(Some(Item::Library { glibc: None }));
        }
    }
    let site = dir.contains("site-packages/") || dir.contains("dist-packages/");
    let metadata = (name == "METADATA" && dir.ends_with(".dist-info"))
        || (name == "PKG-INFO" && dir.ends_with(".egg-info"));
    if site && metadata && symlink.is_none() {
        let mut text = String::new();
        // Only the headers matter; a description that is not UTF-8 is no reason to skip the package.
        let mut bytes = Vec::new();
        entry
            .take(1 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        let header = |key: &str| {
            text.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        if let (Some(name), Some(version)) = (header("Name:"), header("Version:")) {
            return Ok(Some(Item::Dist { name, version }));
        }
    }
    Ok(None)
}

/// `python`, `python3`, `python3.12` (not `python3-config`, `python3.12m`).
fn is_python_name(name: &str) -> bool {
    match name.strip_prefix("python") {
        Some("") | Some("3") => true,
        Some(rest) => rest
            .strip_prefix("3.")
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// `GNU C Library (Debian GLIBC 2.36-9+deb12u7) stable release version 2.36.` → `2.36`.
fn glibc_of(bytes: &[u8]) -> Option<String> {
    let re = regex::bytes::Regex::new(r"GNU C Library[^\n\x00]{0,120}?version (\d+\.\d+)")
        .expect("valid regex");
    let caps = re.captures(bytes)?;
    Some(String::from_utf8_lossy(&caps[1]).into_owned())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A gzip tar layer of `(path, content)` files and `(path, "-> target")` symlinks.
    pub(crate) fn layer_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, content) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            if let Some(target) = content.strip_prefix("-> ") {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            } else {
                h.set_size(content.len() as u64);
                b.append_data(&mut h, path, content.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn whiteouts_and_replacements_apply_to_the_layers_below() {
        let mut items = Items::new();
        let lower = layer_of(&[
            ("usr/bin/python3.11", "elf"),
            ("usr/bin/python3", "-> python3.11"),
            ("usr/lib/x86_64-linux-gnu/libpq.so.5", "elf"),
            ("usr/lib/x86_64-linux-gnu/libssl.so.3", "elf"),
            (
                "opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
                "Name: six\nVersion: 1.16.0\n\nSix",
            ),
        ]);
        layer(&lower[..], &mut items).unwrap();
        assert_eq!(items.len(), 5);
        let upper = layer_of(&[
            ("usr/lib/x86_64-linux-gnu/.wh.libpq.so.5", ""),
            ("opt/venv/.wh..wh..opq", ""),
            ("usr/bin/python3", "-> python3.12"),
            ("usr/bin/python3-config", "sh"),
        ]);
        layer(&upper[..], &mut items).unwrap();
        assert!(!items.contains_key("usr/lib/x86_64-linux-gnu/libpq.so.5"));
        assert!(items.contains_key("usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(
            !items.keys().any(|k| k.starts_with("opt/venv/")),
            "{items:?}"
        );
        assert_eq!(
            items["usr/bin/python3"],
            Item::Python(Some("python3.12".into()))
        );
        assert!(!items.contains_key("usr/bin/python3-config"));
    }

    /// A zstd layer as containers' zstd:chunked writes it: several frames, a skippable frame among them.
    #[test]
    fn a_zstd_layer_of_several_frames_is_read() {
        use ruzstd::encoding::{CompressionLevel, compress_to_vec};
        let gz = layer_of(&[
            ("usr/bin/python3.12", "elf"),
            ("usr/lib/x86_64-linux-gnu/libpq.so.5", "elf"),
        ]);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let (first, rest) = tar_bytes.split_at(700);
        let mut zstd = compress_to_vec(first, CompressionLevel::Fastest);
        zstd.extend(0x184D_2A50u32.to_le_bytes());
        zstd.extend(5u32.to_le_bytes());
        zstd.extend(b"toc!!");
        zstd.extend(compress_to_vec(rest, CompressionLevel::Fastest));
        let mut items = Items::new();
        layer(&zstd[..], &mut items).unwrap();
        assert_eq!(items["usr/bin/python3.12"], Item::Python(None));
        assert!(items.contains_key("usr/lib/x86_64-linux-gnu/libpq.so.5"));
    }

    #[test]
    fn a_layer_without_its_end_blocks_is_read_to_its_end() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, "usr/bin/python3.11", &b"elf"[..])
            .unwrap();
        let full = b.into_inner().unwrap();
        let mut items = Items::new();
        layer(&full[..512 + 3], &mut items).unwrap();
        assert_eq!(items["usr/bin/python3.11"], Item::Python(None));
    }

    #[test]
    fn glibc_is_read_from_libc_and_musl_from_its_loader() {
        let mut items = Items::new();
        let l = layer_of(&[
            (
                "lib/x86_64-linux-gnu/libc.so.6",
                "\x7fELF...GNU C Library (Debian GLIBC 2.36-9+deb12u7) stable release version 2.36.\n",
            ),
            ("lib/ld-musl-x86_64.so.1", "elf"),
            ("lib/x86_64-linux-gnu/libc-2.31.so", "elf"),
        ]);
        layer(&l[..], &mut items).unwrap();
        assert_eq!(
            items["lib/x86_64-linux-gnu/libc.so.6"],
            Item::Library {
                glibc: Some("2.36".into())
            }
        );
        assert_eq!(
            items["lib/x86_64-linux-gnu/libc-2.31.so"],
            Item::Library {
                glibc: Some("2.31".into())
            }
        );
        assert_eq!(items["lib/ld-musl-x86_64.so.1"], Item::Musl);
        assert!(layer(&[0x28, 0xb5, 0x2f, 0xfd, 0][..], &mut items).is_err());
    }
}
