//! GitLab dotenv reports (`artifacts:reports:dotenv`): `KEY=value` lines that later jobs receive as variables.
//! GitLab's parser is strict and its failures are confusing (a job fails at upload time), so every rule is
//! checked here before anything is written: keys `[A-Za-z0-9_]`, one line per value, no quotes (GitLab keeps
//! them literally), no surrounding blanks (stripped), at most 20 variables (self-managed default) and 5 KB.
//! Values that equal any known secret are refused: the artifact is downloadable by anyone with pipeline access.

use std::path::Path;

pub const MAX_VARIABLES: usize = 20;
pub const MAX_BYTES: usize = 5 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DotenvError {
    #[error("dotenv key `{0}` may hold only letters, digits and `_`")]
    Key(String),
    #[error("dotenv value of `{0}` must be one line without surrounding blanks or quotes")]
    Value(String),
    #[error("dotenv value of `{0}` contains a secret; refusing to write it to an artifact")]
    Secret(String),
    #[error("dotenv report has {0} variables; GitLab accepts at most {MAX_VARIABLES}")]
    TooMany(usize),
    #[error("dotenv report is {0} bytes; GitLab accepts at most {MAX_BYTES}")]
    TooLarge(usize),
}

#[derive(Debug, Default)]
pub struct Dotenv {
    entries: Vec<(String, String)>,
}

impl Dotenv {
    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }

    /// The file's content, after checking every rule.
    pub fn render<S: AsRef<str>>(&self, secrets: &[S]) -> Result<String, DotenvError> {
        if self.entries.len() > MAX_VARIABLES {
            return Err(DotenvError::TooMany(self.entries.len()));
        }
        let mut out = String::new();
        for (k, v) in &self.entries {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(DotenvError::Key(k.clone()));
            }
            let bad = v.contains(['\n', '\r', '\0', '"', '\'']) || v.trim() != v;
            if bad {
                return Err(DotenvError::Value(k.clone()));
            }
            if secrets
                .iter()
                .map(AsRef::as_ref)
                .any(|s: &str| !s.is_empty() && v.contains(s))
            {
                return Err(DotenvError::Secret(k.clone()));
            }
            out.push_str(&format!("{k}={v}\n"));
        }
        if out.len() > MAX_BYTES {
            return Err(DotenvError::TooLarge(out.len()));
        }
        Ok(out)
    }

    /// Write atomically (temp file + rename): a later job never sees half a report. The error is the
    /// reason, for the caller to attach to the path.
    pub fn write(&self, path: &Path, secrets: &[String]) -> Result<(), String> {
        let text = self.render(secrets).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("flowship-tmp");
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_lines() {
        let mut d = Dotenv::default();
        d.set("FLOWSHIP_IMAGE", "h.example.com/f/etl:1@sha256:ab");
        d.set("FLOWSHIP_IMAGE_TAG", "1");
        d.set("FLOWSHIP_IMAGE_TAG", "2");
        assert_eq!(
            d.render::<&str>(&[]).unwrap(),
            "FLOWSHIP_IMAGE=h.example.com/f/etl:1@sha256:ab\nFLOWSHIP_IMAGE_TAG=2\n"
        );
    }

    #[test]
    fn enforces_gitlab_rules() {
        let one = |k: &str, v: &str| {
            let mut d = Dotenv::default();
            d.set(k, v);
            d.render(&["s3cret-sentinel"])
        };
        assert_eq!(one("A-B", "x"), Err(DotenvError::Key("A-B".into())));
        assert_eq!(one("A", "two\nlines"), Err(DotenvError::Value("A".into())));
        assert_eq!(one("A", "\"quoted\""), Err(DotenvError::Value("A".into())));
        assert_eq!(one("A", " padded"), Err(DotenvError::Value("A".into())));
        assert_eq!(
            one("A", "https://u:s3cret-sentinel@h"),
            Err(DotenvError::Secret("A".into()))
        );
        let mut d = Dotenv::default();
        for i in 0..21 {
            d.set(&format!("K{i}"), "v");
        }
        assert_eq!(d.render::<&str>(&[]), Err(DotenvError::TooMany(21)));
        let mut d = Dotenv::default();
        d.set("BIG", &"x".repeat(MAX_BYTES));
        assert!(matches!(
            d.render::<&str>(&[]),
            Err(DotenvError::TooLarge(_))
        ));
    }
}
