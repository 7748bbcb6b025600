//! `flowship doctor`: for the registry, the GitOps repo and the Prefect API, whether each is reachable, its TLS
//! certificate trusted, the credentials accepted, the account allowed to push / write / create deployments
//! (where that can be checked without side effects), and the server's version. The three run concurrently.
//! When signing or a signature policy is configured, also whether the keys read and belong together.

use crate::error::Error;
use crate::gitops::remote::{Access, GitError};
use crate::http::{Http, TransportError};
use crate::output::Printer;
use crate::prefect::{Prefect, PrefectError};
use crate::registry::{PushCheck, RegistryError, Session};
use crate::report::doctor::{Check, ServiceReport, Status};
use crate::settings::Settings;
use git2::Direction;

fn check(check: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        check,
        status,
        detail: detail.into(),
        hint: None,
        refused: false,
    }
}

fn fail(name: &'static str, detail: impl Into<String>, hint: Option<String>) -> Check {
    Check {
        check: name,
        status: Status::Fail,
        detail: detail.into(),
        hint,
        refused: false,
    }
}

/// A failed check from an error, remembering whether the configuration forbade the request.
fn failed<E: std::error::Error + 'static>(
    name: &'static str,
    e: &E,
    hint: Option<String>,
) -> Check {
    Check {
        refused: crate::error::is_refusal(e),
        ..fail(name, e.to_string(), hint)
    }
}

/// A request flowship would not send: plain transport to a host not named by `--plain-http`.
fn refused(checks: &mut Vec<Check>, detail: String, hint: Option<String>, later: &[&'static str]) {
    checks.push(Check {
        refused: true,
        ..fail("tls", detail, hint)
    });
    skip_rest(checks, later, "not contacted: plain transport refused");
}

fn skip_rest(checks: &mut Vec<Check>, names: &[&'static str], why: &str) {
    for n in names {
        checks.push(check(n, Status::Skip, why));
    }
}

fn not_configured(service: &'static str, hint: &str) -> ServiceReport {
    ServiceReport {
        service,
        target: None,
        checks: vec![Check {
            check: "configured",
            status: Status::Skip,
            detail: "not configured".into(),
            hint: Some(hint.into()),
            refused: false,
        }],
    }
}

pub async fn run(settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let http = Http::new(&settings.http_config())?;
    let _section = printer.section("flowship_doctor", "flowship doctor");
    let (registry, gitops, prefect) = tokio::join!(
        registry(settings, &http),
        gitops(settings),
        prefect(settings, &http)
    );
    let mut reports = vec![registry, gitops?, prefect];
    reports.extend(signing(settings));
    let failed = reports
        .iter()
        .flat_map(|r| &r.checks)
        .filter(|c| c.status == Status::Fail)
        .count();
    let refusals = reports
        .iter()
        .flat_map(|r| &r.checks)
        .filter(|c| c.refused)
        .count();

    crate::report::doctor(&reports, failed == 0, printer)?;
    if refusals > 0 {
        let mut hints: Vec<String> = reports
            .iter()
            .flat_map(|r| &r.checks)
            .filter(|c| c.refused)
            .filter_map(|c| c.hint.clone())
            .collect();
        hints.dedup();
        return Err(Error::Usage {
            message: format!(
                "doctor: {failed} check(s) failed, {refusals} because plain transport to an unlisted host was refused"
            ),
            hint: Some(hints.join("; ")),
        });
    }
    if failed > 0 {
        return Err(Error::Reported(format!(
            "doctor: {failed} check{} failed",
            if failed == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// The signing key (it reads, and opens with its password) and the environment's `verify.key`, when either
/// is configured: a key that does not read would fail the first push, not the doctor.
fn signing(settings: &Settings) -> Option<ServiceReport> {
    use crate::ops::image::sign;
    if !settings.sign.wanted() && settings.verify.key.is_none() {
        return None;
    }
    let mut checks = Vec::new();
    let private = match sign::key(settings) {
        Ok(Some(k)) => {
            let fp = k.public().fingerprint();
            checks.push(check("key", Status::Ok, format!("ECDSA P-256, key {fp}")));
            Some(k)
        }
        Ok(None) => {
            checks.push(check(
                "key",
                Status::Skip,
                "no signing key: images are pushed unsigned",
            ));
            None
        }
        Err(e) => {
            checks.push(fail("key", e.to_string(), e.hint()));
            None
        }
    };
    if let Some(path) = &settings.verify.key {
        match sign::public_key(path) {
            Ok(public) => {
                checks.push(check(
                    "verify_key",
                    Status::Ok,
                    format!("{} (key {})", path.value.display(), public.fingerprint()),
                ));
                if let Some(k) = private.filter(|k| k.public() != public) {
                    checks.push(Check {
                        hint: Some("releases here take only images the verify key's private key signed (in the build job); sign with that key, or fix verify.key".into()),
                        ..check(
                            "pair",
                            Status::Warn,
                            format!(
                                "this job signs with key {}, the environment requires key {}",
                                k.public().fingerprint(),
                                public.fingerprint()
                            ),
                        )
                    });
                }
            }
            Err(e) => checks.push(fail("verify_key", e.to_string(), e.hint())),
        }
    }
    Some(ServiceReport {
        service: "signing",
        target: None,
        checks,
    })
}

/// Reachability and TLS rows for a transport failure: a certificate problem means the server was reached.
fn transport_rows(
    checks: &mut Vec<Check>,
    e: &TransportError,
    message: String,
    hint: Option<String>,
) {
    match e {
        TransportError::PlainHttp { .. } => checks.push(Check {
            refused: true,
            ..fail("reachable", message, hint)
        }),
        TransportError::Untrusted { .. } | TransportError::Tls { .. } => {
            checks.push(check("reachable", Status::Ok, "connected"));
            checks.push(fail("tls", message, hint));
        }
        _ => {
            checks.push(fail("reachable", message, hint));
            checks.push(check("tls", Status::Skip, "not reached"));
        }
    }
}

async fn registry(settings: &Settings, http: &Http) -> ServiceReport {
    let Some(image) = &settings.image else {
        return not_configured(
            "registry",
            "set --image, FLOWSHIP_IMAGE or image.repository in flowship.yaml",
        );
    };
    let image = &image.value;
    let report = |checks| ServiceReport {
        service: "registry",
        target: Some(image.repository_ref()),
        checks,
    };
    let mut checks = Vec::new();
    let later = ["credentials", "push", "version"];
    let session = match Session::open(
        http.clone(),
        image.api_host(),
        settings.credential(&image.registry),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            let (msg, hint) = (e.to_string(), e.hint());
            match &e {
                RegistryError::Transport { source, .. } => {
                    transport_rows(&mut checks, source, msg, hint)
                }
                _ => checks.push(fail("reachable", msg, hint)),
            }
            skip_rest(&mut checks, &later, "not reached");
            return report(checks);
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
            return report(checks);
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
    report(checks)
}

async fn gitops(settings: &Settings) -> Result<ServiceReport, Error> {
    let Some(repo) = &settings.gitops.repo else {
        return Ok(not_configured(
            "gitops",
            "set --gitops-repo, FLOWSHIP_GITOPS_REPO or gitops.repo in flowship.yaml",
        ));
    };
    let access = match settings.git_access(&repo.value) {
        Ok(a) => a,
        Err(e) if e.is_config() => {
            let mut checks = Vec::new();
            checks.push(check("reachable", Status::Skip, "not contacted"));
            refused(
                &mut checks,
                e.to_string(),
                e.hint(),
                &["credentials", "branch", "push", "version"],
            );
            return Ok(ServiceReport {
                service: "gitops",
                target: Some(crate::secret::redact_url(&repo.value)),
                checks,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let branch = settings.gitops.branch.value.clone();
    let target = access.display_url();
    let checks = tokio::task::spawn_blocking(move || gitops_checks(&access, &branch))
        .await
        .map_err(|e| Error::Internal(format!("git check panicked: {e}")))?;
    Ok(ServiceReport {
        service: "gitops",
        target: Some(target),
        checks,
    })
}

fn gitops_checks(access: &Access, branch: &str) -> Vec<Check> {
    let url = access.display_url();
    let mut checks = Vec::new();
    let later = ["credentials", "branch", "push", "version"];
    let refs = match access.list_refs(Direction::Fetch) {
        Ok(r) => r,
        Err(e) => {
            let (msg, hint) = (e.to_string(), e.hint());
            match e {
                GitError::Untrusted { .. } => {
                    checks.push(check("reachable", Status::Ok, "connected"));
                    checks.push(fail("tls", msg, hint));
                    skip_rest(&mut checks, &later, "TLS failed");
                }
                GitError::BadCredentials { .. } | GitError::NeedsCredentials { .. } => {
                    checks.push(check("reachable", Status::Ok, "connected"));
                    checks.push(tls_row(&url));
                    checks.push(fail("credentials", msg, hint));
                    skip_rest(&mut checks, &later[1..], "credentials not accepted");
                }
                _ => {
                    checks.push(fail("reachable", msg, hint));
                    skip_rest(
                        &mut checks,
                        &["tls", "credentials", "branch", "push", "version"],
                        "not reached",
                    );
                }
            }
            return checks;
        }
    };
    checks.push(check(
        "reachable",
        Status::Ok,
        format!("{} refs listed", refs.len()),
    ));
    checks.push(tls_row(&url));
    checks.push(check("credentials", Status::Ok, "accepted for reading"));
    let full = format!("refs/heads/{branch}");
    checks.push(if refs.contains(&full) {
        check("branch", Status::Ok, format!("`{branch}` exists"))
    } else {
        fail(
            "branch",
            format!("`{branch}` does not exist"),
            Some("set --gitops-branch or gitops.branch to an existing branch".into()),
        )
    });
    checks.push(match access.list_refs(Direction::Push) {
        Ok(_) => check("push", Status::Ok, "receive-pack granted (no push made)"),
        Err(e) => failed("push", &e, e.hint()),
    });
    checks.push(check(
        "version",
        Status::Skip,
        "the git protocol does not report one to libgit2",
    ));
    checks
}

fn tls_row(url: &str) -> Check {
    if url.starts_with("https://") {
        check("tls", Status::Ok, "certificate trusted")
    } else if url.starts_with("http://") {
        check(
            "tls",
            Status::Warn,
            "plain HTTP: credentials travel unencrypted",
        )
    } else {
        check("tls", Status::Skip, "not a TLS transport")
    }
}

async fn prefect(settings: &Settings, http: &Http) -> ServiceReport {
    let Some(api) = &settings.prefect.api_url else {
        return not_configured(
            "prefect",
            "set --prefect-api-url, FLOWSHIP_PREFECT_API_URL, prefect.api_url or PREFECT_API_URL",
        );
    };
    let client = Prefect::new(http.clone(), &api.value, settings.prefect_auth());
    let target = Some(client.base_url().to_string());
    let mut checks = Vec::new();
    let later = ["credentials", "csrf", "work_pool", "deployments", "version"];
    if let Err(e) = client.health().await {
        let (msg, hint) = (e.to_string(), e.hint());
        match &e {
            PrefectError::Transport { source, .. } => {
                transport_rows(&mut checks, source, msg, hint)
            }
            _ => checks.push(fail("reachable", msg, hint)),
        }
        skip_rest(&mut checks, &later, "not reached");
        return ServiceReport {
            service: "prefect",
            target,
            checks,
        };
    }
    checks.push(check("reachable", Status::Ok, "GET /health answered"));
    checks.push(if client.base_url().starts_with("https://") {
        check("tls", Status::Ok, "certificate trusted")
    } else {
        check("tls", Status::Warn, "plain HTTP")
    });
    let version = match client.server_version().await {
        Ok(v) => {
            let how = match (&settings.prefect.auth_string, &settings.prefect.api_key) {
                (Some(_), _) => "basic auth accepted",
                (None, Some(_)) => "API key accepted",
                (None, None) => "server needs no credentials",
            };
            checks.push(check("credentials", Status::Ok, how));
            v
        }
        Err(e) => {
            checks.push(failed("credentials", &e, e.hint()));
            skip_rest(&mut checks, &later[1..], "credentials not accepted");
            return ServiceReport {
                service: "prefect",
                target,
                checks,
            };
        }
    };
    checks.push(match client.csrf_enabled().await {
        Ok(true) => check("csrf", Status::Ok, "protection on; token obtained"),
        Ok(false) => check("csrf", Status::Ok, "protection off"),
        Err(e) => failed("csrf", &e, e.hint()),
    });
    checks.push(match &settings.prefect.work_pool {
        None => Check {
            check: "work_pool",
            status: Status::Skip,
            detail: "none configured".into(),
            hint: Some("set --work-pool, FLOWSHIP_WORK_POOL or prefect.work_pool".into()),
            refused: false,
        },
        Some(name) => match client.work_pool(&name.value).await {
            Ok(p) => pool_check(settings, &p),
            // Missing, and the first release or register makes it: what the configuration asks for.
            Err(crate::prefect::PrefectError::WorkPoolMissing { .. })
                if settings.prefect.create_work_pool.is_some() =>
            {
                check(
                    "work_pool",
                    Status::Ok,
                    format!(
                        "`{}` does not exist yet; created as type {} by the first registration",
                        name.value,
                        settings
                            .prefect
                            .create_work_pool
                            .as_ref()
                            .map_or("", |c| c.value.as_str())
                    ),
                )
            }
            Err(e) => failed("work_pool", &e, e.hint()),
        },
    });
    checks.push(if client.is_cloud() {
        check(
            "deployments",
            Status::Skip,
            "Prefect Cloud roles cannot be checked without side effects",
        )
    } else {
        check(
            "deployments",
            Status::Ok,
            "self-hosted: every authenticated client may create deployments",
        )
    });
    checks.push(check(
        "version",
        Status::Ok,
        version
            .map(|v| format!("Prefect {v}"))
            .unwrap_or_else(|| "not reported".into()),
    ));
    ServiceReport {
        service: "prefect",
        target,
        checks,
    }
}

/// An existing pool; a Kubernetes pool pulling from a registry that needs a login, with no image pull secret
/// in its job template, is a warning: its pods could not pull the image a release pins.
fn pool_check(settings: &Settings, p: &crate::prefect::WorkPool) -> Check {
    let private = settings
        .image
        .as_ref()
        .is_some_and(|i| settings.credential(&i.value.registry).is_some());
    let secrets = p.pull_secrets();
    let wanted = settings
        .prefect
        .image_pull_secret
        .as_ref()
        .map(|s| &s.value);
    let missing = match wanted {
        Some(w) => !secrets.contains(w),
        None => private && secrets.is_empty(),
    };
    if p.kind == "kubernetes" && missing {
        return Check {
            check: "work_pool",
            status: Status::Warn,
            detail: format!(
                "`{}` exists (type kubernetes) but names {} image pull secret; its pods cannot pull from a registry that needs a login",
                p.name,
                wanted.map_or("no".to_string(), |w| format!("no `{w}`"))
            ),
            hint: Some(
                "set --image-pull-secret / prefect.image_pull_secret (the next register adds it to the pool's job template)".into(),
            ),
            refused: false,
        };
    }
    let named = match secrets.is_empty() {
        true => String::new(),
        false => format!(", image pull secret(s) {}", secrets.join(", ")),
    };
    check(
        "work_pool",
        Status::Ok,
        format!("`{}` exists (type {}){named}", p.name, p.kind),
    )
}
