//! Just enough of an ELF file to know what it needs from an image: its architecture, whether it asks for a
//! dynamic loader (`PT_INTERP`, which an image from scratch does not have), and the shared libraries it
//! names (`DT_NEEDED`, which the base must provide). Hand-written: a few fixed-offset reads, where an ELF
//! crate would parse the whole file. 64-bit little-endian only (x86_64, aarch64: the platforms we build).

/// `amd64` / `arm64` (OCI's names), and the loader it needs, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Binary {
    pub arch: &'static str,
    pub interpreter: Option<String>,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;

use std::io::{Read, Seek, SeekFrom};

/// Fixed-offset little-endian reads of an ELF file; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u16(&self, o: usize) -> Option<u16> {
        self.0
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, o: usize) -> Option<u32> {
        self.0
            .get(o..o.checked_add(4)?)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&self, o: usize) -> Option<u64> {
        self.0
            .get(o..o.checked_add(8)?)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// The NUL-terminated string at `o`.
    fn cstr(&self, o: usize) -> Option<String> {
        let rest = self.0.get(o..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    /// Program headers as `(type, offset, vaddr, filesz)`.
    fn program_headers(&self) -> Option<Vec<(u32, u64, u64, u64)>> {
        let phoff = self.u64(32)? as usize;
        let phentsize = self.u16(54)? as usize;
        let phnum = self.u16(56)? as usize;
        (0..phnum)
            .map(|i| {
                let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
                Some((
                    self.u32(ph)?,
                    self.u64(ph + 8)?,
                    self.u64(ph + 16)?,
                    self.u64(ph + 32)?,
                ))
            })
            .collect()
    }
}

fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("is not a 64-bit little-endian ELF executable".into());
    }
    Ok(())
}

pub fn inspect(bytes: &[u8]) -> Result<Binary, String> {
    check_header(bytes)?;
    let r = Reader(bytes);
    let arch = match r.u16(18) {
        Some(62) => "amd64",
        Some(183) => "arm64",
        other => return Err(format!("is for an unsupported machine ({other:?})")),
    };
    let headers = r.program_headers().ok_or("is truncated")?;
    let mut interpreter = None;
    for (kind, off, _, len) in headers {
        if kind == PT_INTERP {
            let path = bytes
                .get(off as usize..(off + len) as usize)
                .ok_or("is truncated")?;
            interpreter = Some(
                String::from_utf8_lossy(path)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    Ok(Binary { arch, interpreter })
}

/// `len` bytes of `f` at `off` (fewer at its end).
fn read_at(f: &mut (impl Read + Seek), off: u64, len: u64) -> Result<Vec<u8>, String> {
    f.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
    let mut b = Vec::new();
    f.take(len).read_to_end(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

/// Past this, a table is not what a real shared object has: the file is not read further.
const MAX_TABLE: u64 = 16 << 20;

/// The shared libraries a shared object or executable names (`DT_NEEDED`), in its order. Only the header,
/// the program headers, the dynamic section and its string table are read (a `.so` of a wheel can be
/// hundreds of MB). The string table is found by address, so the address is mapped back to a file offset
/// through the loadable segments.
pub fn needed(f: &mut (impl Read + Seek)) -> Result<Vec<String>, String> {
    let head = read_at(f, 0, 64)?;
    check_header(&head)?;
    let r = Reader(&head);
    let (Some(phoff), Some(size), Some(count)) = (r.u64(32), r.u16(54), r.u16(56)) else {
        return Err("is truncated".into());
    };
    let table_end = phoff.saturating_add(u64::from(size) * u64::from(count));
    let prefix = read_at(f, 0, table_end.min(MAX_TABLE))?;
    let headers = Reader(&prefix).program_headers().ok_or("is truncated")?;
    let Some(&(_, dyn_off, _, dyn_len)) = headers.iter().find(|h| h.0 == PT_DYNAMIC) else {
        return Ok(Vec::new()); // static: needs nothing
    };
    let dynamic = read_at(f, dyn_off, dyn_len.min(MAX_TABLE))?;
    let d = Reader(&dynamic);
    let (mut names, mut strtab, mut strsz) = (Vec::new(), None, None);
    for i in 0..(dyn_len / 16) as usize {
        let (Some(tag), Some(val)) = (d.u64(i * 16), d.u64(i * 16 + 8)) else {
            return Err("is truncated".into());
        };
        match tag {
            0 => break, // DT_NULL
            DT_NEEDED => names.push(val),
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            _ => {}
        }
    }
    let Some(addr) = strtab else {
        return Ok(Vec::new());
    };
    let strtab_off = headers
        .iter()
        .find(|(kind, _, vaddr, filesz)| {
            *kind == PT_LOAD && (*vaddr..vaddr.saturating_add(*filesz)).contains(&addr)
        })
        .map(|(_, off, vaddr, _)| addr - vaddr + off)
        .ok_or("has a string table outside its segments")?;
    let strings = read_at(f, strtab_off, strsz.unwrap_or(MAX_TABLE).min(MAX_TABLE))?;
    let t = Reader(&strings);
    names
        .into_iter()
        .map(|n| t.cstr(n as usize).ok_or_else(|| "is truncated".to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_is_read_and_junk_is_refused() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let b = inspect(&me).unwrap();
        assert_eq!(b.arch, "amd64");
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(
            inspect(&me[..80]).is_err(),
            "cut inside its program headers"
        );
    }

    #[test]
    fn the_libraries_a_binary_needs_are_named() {
        let mut file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let libs = needed(&mut file).unwrap();
        assert!(libs.iter().any(|l| l == "libc.so.6"), "{libs:?}");
        let mut junk = std::io::Cursor::new(&b"not an elf file at all"[..]);
        assert!(needed(&mut junk).is_err());
        // Cut inside its program headers: the table is not there to read.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(needed(&mut std::io::Cursor::new(&me[..80])).is_err());
    }
}
