//! `WWW-Authenticate` challenges and registry bearer tokens.

use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
    /// No challenge or one we do not speak.
    Other(String),
}

/// Parse `Bearer realm="https://h/service/token",service="harbor-registry",scope="..."` or `Basic realm="x"`.
pub fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    let param = |name: &str| -> Option<String> {
        let mut rest = params;
        while let Some(i) = rest.find('=') {
            let key = rest[..i].trim().trim_start_matches(',').trim();
            let after = &rest[i + 1..];
            let (value, next) = if let Some(stripped) = after.strip_prefix('"') {
                let end = stripped.find('"').unwrap_or(stripped.len());
                (&stripped[..end], stripped.get(end + 1..).unwrap_or(""))
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if key.eq_ignore_ascii_case(name) {
                return Some(value.to_string());
            }
            rest = next;
        }
        None
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Challenge::Basic
    } else if scheme.eq_ignore_ascii_case("bearer") {
        match param("realm") {
            Some(realm) => Challenge::Bearer {
                realm,
                service: param("service"),
            },
            None => Challenge::Other(header.to_string()),
        }
    } else {
        Challenge::Other(header.to_string())
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<String> {
        self.token.or(self.access_token).filter(|t| !t.is_empty())
    }
}

/// Fetch a bearer token for `scopes` (space-separated `repository:name:actions`) from the challenge's realm,
/// with Basic credentials when there are any. Used by every registry conversation.
pub async fn fetch_token(
    http: &crate::http::Http,
    host: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &str,
    credential: Option<&super::Credential>,
) -> Result<String, super::RegistryError> {
    use super::RegistryError;
    use reqwest::StatusCode;
    use reqwest::header::AUTHORIZATION;
    let protocol = |status: u16, detail: String| RegistryError::Protocol {
        registry: host.into(),
        what: "the token request".into(),
        status,
        detail,
    };
    let mut url = url::Url::parse(realm)
        .map_err(|e| protocol(0, format!("realm `{realm}` is not a URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes.split(' ') {
            q.append_pair("scope", s);
        }
    }
    let basic = credential.map(basic);
    let resp = http
        .send(|| {
            let r = http.client().get(url.clone());
            match &basic {
                Some(b) => r.header(AUTHORIZATION, b),
                None => r,
            }
        })
        .await
        .map_err(|source| RegistryError::Transport {
            registry: host.into(),
            source,
        })?;
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        let detail = crate::http::error_text(resp).await;
        return Err(match credential {
            Some(c) => RegistryError::BadCredentials {
                registry: host.into(),
                user: c.username.value.clone(),
                detail: detail.trim().chars().take(300).collect(),
            },
            None => RegistryError::NeedsCredentials {
                registry: host.into(),
            },
        });
    }
    if !status.is_success() {
        return Err(protocol(
            status.as_u16(),
            crate::http::error_text(resp)
                .await
                .trim()
                .chars()
                .take(300)
                .collect(),
        ));
    }
    let body: TokenResponse = crate::http::json(resp)
        .await
        .map_err(|e| protocol(status.as_u16(), format!("answer is not a token: {e}")))?;
    body.into_token()
        .ok_or_else(|| protocol(status.as_u16(), "answer holds no token".into()))
}

/// The one place the Basic header is made from a credential.
pub(super) fn basic(c: &super::Credential) -> String {
    let raw = format!("{}:{}", c.username.value, c.password.value.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    access: Vec<Access>,
}

#[derive(Debug, Deserialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

/// The actions a registry JWT grants on `repository`, if the token is a JWT with an `access` claim (Docker
/// distribution token spec; Harbor grants empty actions where a user lacks permission instead of failing).
pub fn granted_actions(token: &str, repository: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .access
            .into_iter()
            .filter(|a| a.kind == "repository" && a.name == repository)
            .flat_map(|a| a.actions)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harbor_and_distribution_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://h.example.com/service/token",service="harbor-registry",scope="repository:a/b:pull""#
            ),
            Challenge::Bearer {
                realm: "https://h.example.com/service/token".into(),
                service: Some("harbor-registry".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Challenge::Basic
        );
        assert!(matches!(parse_challenge("Negotiate"), Challenge::Other(_)));
    }

    #[test]
    fn reads_jwt_access_claim() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            r#"{"access":[{"type":"repository","name":"flows/etl","actions":["pull","push"]}]}"#,
        );
        let token = format!("e30.{payload}.sig");
        assert_eq!(
            granted_actions(&token, "flows/etl"),
            Some(vec!["pull".to_string(), "push".to_string()])
        );
        assert_eq!(granted_actions(&token, "other"), Some(vec![]));
        assert_eq!(granted_actions("opaque", "x"), None);
    }
}
