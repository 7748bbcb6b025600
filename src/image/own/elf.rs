//! Just enough of an ELF header to know what a binary needs from an image: its architecture, and whether it
//! asks for a dynamic loader (`PT_INTERP`), which an image from scratch does not have. Hand-written: two
//! fixed-offset reads, where an ELF crate would parse the whole file.

/// `amd64` / `arm64` (OCI's names), and the loader it needs, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Binary {
    pub arch: &'static str,
    pub interpreter: Option<String>,
}

pub fn inspect(bytes: &[u8]) -> Result<Binary, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("is not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let arch = match u16_at(18) {
        Some(62) => "amd64",
        Some(183) => "arm64",
        other => return Err(format!("is for an unsupported machine ({other:?})")),
    };
    let truncated = || "is truncated".to_string();
    let phoff = u64_at(32).ok_or_else(truncated)? as usize;
    let phentsize = u16_at(54).ok_or_else(truncated)? as usize;
    let phnum = u16_at(56).ok_or_else(truncated)? as usize;
    let mut interpreter = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph).ok_or_else(truncated)? == 3 {
            // PT_INTERP: p_offset at +8, p_filesz at +32; a NUL-terminated path.
            let off = u64_at(ph + 8).ok_or_else(truncated)? as usize;
            let len = u64_at(ph + 32).ok_or_else(truncated)? as usize;
            let path = bytes.get(off..off + len).ok_or_else(truncated)?;
            interpreter = Some(
                String::from_utf8_lossy(path)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    Ok(Binary { arch, interpreter })
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
        assert!(inspect(&me[..80]).is_err() || inspect(&me[..80]).is_ok());
    }
}
