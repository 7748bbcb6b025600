//! Which of two tags is newer, for `--monotonic`: semver (`v1.2.3`, `1.2.3-rc.1`) or numeric (the last run
//! of digits, e.g. `main-1234` from a pipeline IID). `None` when a tag does not fit the order.

/// How tags are ordered for `--monotonic`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Monotonic {
    Semver,
    Numeric,
}

impl std::fmt::Display for Monotonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Monotonic::Semver => "semver",
            Monotonic::Numeric => "numeric",
        })
    }
}

use std::cmp::Ordering;

/// Does `tag` have a place in the order?
pub fn in_order(order: Monotonic, tag: &str) -> bool {
    match order {
        Monotonic::Semver => semver(tag).is_some(),
        Monotonic::Numeric => last_number(tag).is_some(),
    }
}

/// What a tag in the order looks like, for messages.
pub fn describe(order: Monotonic) -> &'static str {
    match order {
        Monotonic::Semver => "a semver version",
        Monotonic::Numeric => "numbered (no run of digits in it)",
    }
}

pub fn compare(order: Monotonic, old: &str, new: &str) -> Option<Ordering> {
    match order {
        Monotonic::Semver => Some(semver(old)?.cmp(&semver(new)?)),
        Monotonic::Numeric => Some(last_number(old)?.cmp(&last_number(new)?)),
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    core: [u64; 3],
    /// Semver: a release sorts after its pre-releases.
    release: bool,
    pre: Vec<PreId>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreId {
    Num(u64),
    Text(String),
}

fn semver(tag: &str) -> Option<Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let t = t.split('+').next()?;
    let (core, pre) = match t.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (t, None),
    };
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut c = [0u64; 3];
    c[..parts.len()].copy_from_slice(&parts);
    let pre: Vec<PreId> = pre
        .map(|p| {
            p.split('.')
                .map(|id| {
                    id.parse()
                        .map(PreId::Num)
                        .unwrap_or_else(|_| PreId::Text(id.into()))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Version {
        core: c,
        release: pre.is_empty(),
        pre,
    })
}

fn last_number(tag: &str) -> Option<u64> {
    let end = tag.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = tag[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map(|i| i + 1)
        .unwrap_or(0);
    tag[start..end].parse().ok()
}

/// The tag inside a value as written in a manifest: an image reference, a `tag[@digest]` field, or a digest.
pub fn tag_of(value: &str) -> Option<&str> {
    if value.starts_with("sha256:") {
        return None;
    }
    let before_digest = value.split('@').next().unwrap_or(value);
    if before_digest.contains('/') || before_digest.contains(':') {
        let i = before_digest.rfind(':')?;
        (!before_digest[i..].contains('/')).then(|| &before_digest[i + 1..])
    } else {
        Some(before_digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_order() {
        assert_eq!(
            compare(Monotonic::Semver, "1.2.3", "1.10.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Monotonic::Semver, "v2.0.0", "1.9.9"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(Monotonic::Semver, "1.0.0-rc.1", "1.0.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Monotonic::Semver, "1.0.0-rc.2", "1.0.0-rc.10"),
            Some(Ordering::Less)
        );
        assert_eq!(compare(Monotonic::Semver, "latest", "1.0.0"), None);
    }

    #[test]
    fn numeric_order_and_tags_in_values() {
        assert_eq!(
            compare(Monotonic::Numeric, "main-99", "main-100"),
            Some(Ordering::Less)
        );
        assert_eq!(compare(Monotonic::Numeric, "abc", "1"), None);
        assert_eq!(tag_of("h.example.com:5000/a/b:1.2@sha256:x"), Some("1.2"));
        assert_eq!(tag_of("1.2.3@sha256:x"), Some("1.2.3"));
        assert_eq!(tag_of("h.example.com:5000/a/b"), None);
        assert_eq!(tag_of("sha256:abc"), None);
    }
}
