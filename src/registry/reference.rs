//! Image references: `[registry/]repository[:tag][@sha256:digest]`, with Docker's defaults for a bare name
//! (`python` is `docker.io/library/python`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, e.g. `harbor.example.com` or `127.0.0.1:5000`.
    pub registry: String,
    /// Path inside the registry, e.g. `flows/etl`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not a valid repository path (lowercase letters, digits, `._-/`)")]
    Repository(String),
    #[error("`{0}` is not a valid tag (up to 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`)")]
    Tag(String),
    #[error("`{0}` is not a sha256 digest (`sha256:` + 64 hex digits)")]
    Digest(String),
}

const DOCKER_HUB: &str = "docker.io";

impl Reference {
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !is_digest(d) {
                    return Err(ReferenceError::Digest(d.into()));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/' (a ':' before it is a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag
            && !is_tag(t)
        {
            return Err(ReferenceError::Tag(t.clone()));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => {
                let path = if name.contains('/') {
                    name.to_string()
                } else {
                    format!("library/{name}")
                };
                (DOCKER_HUB.to_string(), path)
            }
        };
        if !is_repository(&repository) {
            return Err(ReferenceError::Repository(repository));
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, no tag or digest.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as people write it: Docker Hub's `docker.io/` (and `library/`) left implicit, as
    /// Docker does and as Prefect stores what prefect.yaml says (`user/repo`, not `docker.io/user/repo`).
    pub fn familiar_repository(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.repository_ref()
        }
    }

    /// The host the registry API lives on (Docker Hub's API is not at docker.io).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

pub fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_repository(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_users_write() {
        let r = Reference::parse("harbor.example.com/flows/etl:1.2.3").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("harbor.example.com", "flows/etl", Some("1.2.3"))
        );
        let r = Reference::parse("127.0.0.1:5000/a/b").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag),
            ("127.0.0.1:5000", "a/b", None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/x:v1@{d}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("v1"), Some(d.as_str()))
        );
        let r = Reference::parse("python:3.12-slim").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.api_host()),
            ("docker.io", "library/python", "registry-1.docker.io")
        );
        assert_eq!(r.to_string(), "docker.io/library/python:3.12-slim");
    }

    #[test]
    fn rejects_what_registries_reject() {
        assert!(matches!(
            Reference::parse("harbor.example.com/Flows/etl"),
            Err(ReferenceError::Repository(_))
        ));
        assert!(matches!(
            Reference::parse("h.example.com/a:-bad"),
            Err(ReferenceError::Tag(_))
        ));
        assert!(matches!(
            Reference::parse("h.example.com/a@sha256:12"),
            Err(ReferenceError::Digest(_))
        ));
        assert_eq!(Reference::parse(" "), Err(ReferenceError::Empty));
    }
}
