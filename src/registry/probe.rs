//! The registry's health, for `doctor`: what can be checked without writing anything.

use super::{Credential, PushCheck, Reference, RegistryError, Session};
use crate::http::Http;
use crate::probe::{Check, Status, check, failed, skip_rest, unreached};

/// The registry of `image`, as `credential`: reachable, TLS trusted, credentials accepted, push permission
/// (the token's claim, else an upload session opened and cancelled: nothing written), version.
pub async fn checks(http: Http, image: &Reference, credential: Option<Credential>) -> Vec<Check> {
    let mut checks = Vec::new();
    let later = ["credentials", "push", "version"];
    let session = match Session::open(http, image.api_host(), credential).await {
        Ok(s) => s,
        Err(e) => {
            let transport = match &e {
                RegistryError::Transport { source, .. } => Some(source),
                _ => None,
            };
            return unreached(transport, e.to_string(), e.hint(), &later);
        }
    };
    let ping = session.ping().clone();
    checks.push(check(
        "reachable",
        Status::Ok,
        format!("GET {} answered {}", ping.url, ping.status),
    ));
    checks.push(if session.base_url().starts_with("https://") {
        check("tls", Status::Ok, "certificate trusted")
    } else {
        check("tls", Status::Warn, "plain HTTP, allowed by --plain-http")
    });
    let auth = match session.authorize(&image.repository).await {
        Ok(auth) => {
            let detail = match (session.user(), &auth) {
                (Some(u), Some(_)) => format!("accepted for `{u}`"),
                (Some(_), None) => {
                    "registry allows anonymous access; credentials not needed".into()
                }
                (None, _) => "anonymous access".into(),
            };
            checks.push(check("credentials", Status::Ok, detail));
            auth
        }
        Err(e) => {
            checks.push(failed("credentials", &e, e.hint()));
            skip_rest(&mut checks, &later[1..], "credentials not accepted");
            return checks;
        }
    };
    checks.push(
        match session.check_push(&image.repository, auth.as_deref()).await {
            Ok(PushCheck::Granted) => check(
                "push",
                Status::Ok,
                format!("token grants push to {}", image.repository),
            ),
            Ok(PushCheck::SessionOpened) => check(
                "push",
                Status::Ok,
                format!(
                    "may push to {} (upload session opened and cancelled)",
                    image.repository
                ),
            ),
            Err(e) => failed("push", &e, e.hint()),
        },
    );
    let version = match session.harbor_version().await {
        Some(v) => format!("Harbor {v}"),
        None => ping
            .api_version
            .clone()
            .unwrap_or_else(|| "not reported".into()),
    };
    checks.push(check("version", Status::Ok, version));
    checks
}
