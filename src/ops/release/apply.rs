//! Applying a release plan: push by digest → scan gate → tags → pull proof → GitOps commit → deployments,
//! each step skipping what is in place; then Prefect follows what GitOps pins (a newer release that landed
//! after our commit is registered as it recorded itself).

use super::{Context, Plan, bump, image, register};
use crate::error::Error;
use crate::output::Printer;
use crate::prefect::project::StepImage;
use crate::settings::Settings;
use serde::Serialize;

/// What a release did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub environment: Option<String>,
    pub image: image::Outcome,
    pub gitops: bump::Outcome,
    pub prefect: register::Outcome,
}

/// Apply the plan, step by step; each step skips what is in place. A failing step stops the release with
/// its error: the steps before it are done, and a re-run picks up from there.
pub async fn apply(
    ctx: &Context<'_>,
    settings: &Settings,
    plan: Plan,
    printer: &Printer,
) -> Result<Outcome, Error> {
    let image = {
        let _s = printer.section("flowship_release_push", "release: push, gate, tag");
        image::apply(settings, plan.image, printer).await?
    };
    if let Some(p) = crate::ops::pull_proof::check(settings, &image.reference).await? {
        printer.info(&format!(
            "pull proof: {} reads {} manifest(s) and {} blob(s){}",
            p.user,
            p.manifests,
            p.blobs,
            p.policies
                .iter()
                .map(|c| format!("; {c}"))
                .collect::<String>()
        ));
    }
    let (bumper, gitops) = {
        let _s = printer.section("flowship_release_bump", "release: GitOps commit");
        bump::apply_keeping(plan.bumper, plan.gitops).await?
    };
    // The clone a direct push went through reads the pins afterwards (a fetch); a merge request's work branch
    // is not the branch whose pins count, so that case reads the branch anew.
    let mut branch = Some(bumper).filter(|b| !b.on_work_branch());
    pause_for_tests();
    // Prefect follows what GitOps pins: a newer release that landed after our commit is registered as it
    // recorded itself, instead of ours (never our definitions with its image, nor its image with ours).
    let newer = if gitops.pushed {
        newer_release(ctx, settings, &image.digest, printer, &mut branch).await?
    } else {
        None
    };
    let mut prefect = {
        let _s = printer.section("flowship_release_register", "release: deployments");
        match &newer {
            Some(r) => register::apply(r, printer).await?,
            None => register::apply(&plan.prefect, printer).await?,
        }
    };
    // One may also land while ours registers: the last release to finish leaves both sides agreeing.
    if gitops.pushed
        && newer.is_none()
        && let Some(r) = newer_release(ctx, settings, &image.digest, printer, &mut branch).await?
    {
        prefect = register::apply(&r, printer).await?;
    }
    Ok(Outcome {
        environment: plan.environment,
        image,
        gitops,
        prefect,
    })
}

/// The registration of the release GitOps pins now, when that is not `ours` (another release landed after
/// our commit): its record's definitions with its image. `None` when ours is pinned, or the pin cannot be
/// read; a newer pin without a record is left to its own job, with a warning.
async fn newer_release(
    ctx: &Context<'_>,
    settings: &Settings,
    ours: &str,
    printer: &Printer,
    branch: &mut Option<bump::Bumper>,
) -> Result<Option<register::Plan>, Error> {
    let now = match branch.take() {
        Some(mut b) => {
            let s = settings.clone();
            let (b, pins) = tokio::task::spawn_blocking(move || {
                let pins = b.refetch().and_then(|_| crate::ops::pins::of(&s, &b));
                (b, pins)
            })
            .await
            .map_err(|e| Error::Internal(format!("pins panicked: {e}")))?;
            *branch = Some(b);
            pins
        }
        None => crate::ops::pins::read(ctx, settings).await,
    };
    let Ok(now) = now else {
        return Ok(None);
    };
    let Some(d) = now.digest.clone().filter(|d| d != ours) else {
        return Ok(None);
    };
    let Some(record) = now
        .record
        .filter(|r| r.digest().as_deref() == Some(d.as_str()))
    else {
        printer.warn(&format!(
            "a newer release pins {d} now, without a release record of flowship's: its own job registers its deployments"
        ));
        return Ok(None);
    };
    printer.info(&format!(
        "a newer release pins {d} now; registering its deployments as it recorded them"
    ));
    let repo = settings
        .image
        .as_ref()
        .map(|i| i.value.repository_ref())
        .unwrap_or_default();
    let image = StepImage {
        repository: repo,
        tag: now.tag.clone(),
        digest: Some(d.clone()),
    };
    let r = super::registration(ctx, settings, image, Some(&record), &[])?;
    Ok(Some(register::plan(&r, printer).await?))
}

/// For tests that force an interleaving: with `FLOWSHIP_TEST_PAUSE_BEFORE_REGISTER=FILE`, a release that has
/// committed writes `FILE.reached` and waits (up to two minutes) while FILE exists. Unset, nothing happens.
fn pause_for_tests() {
    let Some(gate) = std::env::var_os("FLOWSHIP_TEST_PAUSE_BEFORE_REGISTER") else {
        return;
    };
    let gate = std::path::PathBuf::from(gate);
    let _ = std::fs::write(gate.with_extension("reached"), b"");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
