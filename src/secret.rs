//! Secret values: tokens, passwords, API keys. A `Secret` cannot print itself: `Debug` and `Display` both
//! render `<redacted>`, so a secret that ends up in a log line, an error or `flowship settings` shows nothing.
//! The only way to the value is [`Secret::expose`], which call sites use exactly where the value goes on the wire.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for an `Authorization` header or a git credential. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL with any userinfo (`https://user:token@host/...`) removed, for messages. Git remotes and
/// `CI_REPOSITORY_URL` carry credentials this way.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // scp-like git remotes (`git@host:path`) carry no secret; anything else unparseable is cut at '@'.
        Err(_) => match url.rsplit_once('@') {
            Some((user, rest)) if user.contains(':') && user.contains("//") => {
                format!("{}//{}", user.split("//").next().unwrap_or(""), rest)
            }
            _ => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-sentinel");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2-sentinel");
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            redact_url("https://gitlab-ci-token:abc@gitlab.example.com/g/p.git"),
            "https://gitlab.example.com/g/p.git"
        );
        assert_eq!(
            redact_url("https://gitlab.example.com/g/p.git"),
            "https://gitlab.example.com/g/p.git"
        );
        assert_eq!(
            redact_url("git@gitlab.example.com:g/p.git"),
            "git@gitlab.example.com:g/p.git"
        );
    }
}
