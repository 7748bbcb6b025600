//! `flowship doctor`: for the registry, the GitOps repo and the Prefect API, whether each is reachable, its TLS
//! certificate trusted, the credentials accepted, the account allowed to push / write / create deployments
//! (where that can be checked without side effects), and the server's version. The three run concurrently.
//! When signing or a signature policy is configured, also whether the keys read and belong together. The
//! probes are each system's own (`registry::probe`, `gitops::probe`, `prefect::probe`, `ops::image::sign`);
//! doctor resolves what they check from the settings and keeps the table and the exit code.

use crate::error::Error;
use crate::http::Http;
use crate::output::Printer;
use crate::prefect::Prefect;
use crate::probe::{Check, ServiceReport, Status, check, refused};
use crate::settings::Settings;

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
    reports.extend(crate::ops::image::sign::probe(settings));
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

async fn registry(settings: &Settings, http: &Http) -> ServiceReport {
    let Some(image) = &settings.image else {
        return not_configured(
            "registry",
            "set --image, FLOWSHIP_IMAGE or image.repository in flowship.yaml",
        );
    };
    let image = &image.value;
    ServiceReport {
        service: "registry",
        target: Some(image.repository_ref()),
        checks: crate::registry::probe::checks(
            http.clone(),
            image,
            settings.credential(&image.registry),
        )
        .await,
    }
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
    let checks =
        tokio::task::spawn_blocking(move || crate::gitops::probe::checks(&access, &branch))
            .await
            .map_err(|e| Error::Internal(format!("git check panicked: {e}")))?;
    Ok(ServiceReport {
        service: "gitops",
        target: Some(target),
        checks,
    })
}

async fn prefect(settings: &Settings, http: &Http) -> ServiceReport {
    let Some(api) = &settings.prefect.api_url else {
        return not_configured(
            "prefect",
            "set --prefect-api-url, FLOWSHIP_PREFECT_API_URL, prefect.api_url or PREFECT_API_URL",
        );
    };
    let auth = settings.prefect_auth();
    let client = Prefect::new(http.clone(), &api.value, auth.clone());
    let pool = crate::prefect::probe::PoolWanted {
        name: settings.prefect.work_pool.as_ref().map(|p| p.value.clone()),
        create: settings
            .prefect
            .create_work_pool
            .as_ref()
            .map(|c| c.value.clone()),
        pull_secret: settings
            .prefect
            .image_pull_secret
            .as_ref()
            .map(|s| s.value.clone()),
        private_registry: settings
            .image
            .as_ref()
            .is_some_and(|i| settings.credential(&i.value.registry).is_some()),
    };
    ServiceReport {
        service: "prefect",
        target: Some(client.base_url().to_string()),
        checks: crate::prefect::probe::checks(&client, auth.as_ref(), &pool).await,
    }
}
