//! The one reporter: every operation's plan or outcome rendered as human text (data on stdout, narration on
//! stderr), as one JSON document (`--output json`), and as the GitLab dotenv report (`--dotenv`). Operations
//! never print their results; commands hand them here.

use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::ops::bump;
use crate::output::Printer;
use crate::settings::Settings;
use serde_json::{Value, json};

/// Write the dotenv report (when asked for) with these variables; never in a dry run.
pub fn dotenv(settings: &Settings, vars: &[(&str, String)]) -> Result<(), Error> {
    let Some(path) = &settings.dotenv else {
        return Ok(());
    };
    if settings.dry_run.value || vars.is_empty() {
        return Ok(());
    }
    let mut d = Dotenv::default();
    for (k, v) in vars {
        d.set(k, v);
    }
    d.write(&path.value, &settings.secret_values())
        .map_err(|reason| Error::Output {
            what: path.value.display().to_string(),
            reason,
        })
}

/// A bump's plan, as a dry run shows it: the diff (human) or the changes (JSON).
pub fn bump_plan(plan: &bump::Plan, printer: &Printer) -> Result<(), Error> {
    for n in &plan.notes {
        printer.info(n);
    }
    skipped(&plan.skipped, printer);
    if printer.is_json() {
        let gitops = json!({
            "repo": plan.repo, "branch": plan.branch, "commit": plan.base, "changes": plan.changes,
            "extras": plan.extras, "pushed": false, "attempts": 0, "merge_request": Value::Null,
            "skipped": plan.skipped,
        });
        return printer.json(&json!({ "gitops": gitops, "dry_run": true }));
    }
    if plan.is_empty() {
        printer.info(&format!(
            "nothing to change: {} reference(s) already set on {} of {}",
            plan.found.len(),
            plan.branch,
            plan.repo
        ));
        return Ok(());
    }
    printer.data(&plan.diff)?;
    for e in &plan.extras {
        printer.info(&format!("would {} {}", e.action, e.path));
    }
    printer.info(&format!(
        "dry run: {} change(s) planned, nothing written",
        plan.changes.len() + plan.extras.len()
    ));
    Ok(())
}

/// Human lines for a bump's changes (stdout).
pub fn bump_lines(o: &bump::Outcome) -> String {
    o.changes
        .iter()
        .map(|c| {
            format!(
                "{}:{}  {}  {} -> {}\n",
                c.file, c.line, c.path, c.old, c.new
            )
        })
        .collect()
}

/// Narration for a bump's outcome (stderr).
pub fn bump_narration(o: &bump::Outcome, printer: &Printer) {
    for n in &o.notes {
        printer.info(n);
    }
    skipped(&o.skipped, printer);
    for e in &o.extras {
        let done = match e.action {
            "create" => "wrote",
            "delete" => "removed",
            _ => "updated",
        };
        printer.info(&format!("{done} {}", e.path));
    }
    if o.changes.is_empty() && !o.pushed {
        printer.info(&format!(
            "nothing to change: {} reference(s) already set on {} of {} ({:.1} s)",
            o.found, o.branch, o.repo, o.seconds
        ));
    } else {
        printer.info(&format!(
            "pushed {} to {} ({} change(s), attempt {}, {:.1} s)",
            short(o.commit.as_deref().unwrap_or("?")),
            o.branch,
            o.changes.len() + o.extras.len(),
            o.attempts,
            o.seconds
        ));
    }
    if let Some(mr) = &o.merge_request {
        let what = if mr.created { "opened" } else { "reusing open" };
        match &mr.url {
            Some(u) => printer.info(&format!(
                "{what} merge request {u} ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
            None => printer.info(&format!(
                "merge request requested with push options ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
        }
    }
}

/// References that name the image but were left as they are: never silent.
fn skipped(list: &[crate::gitops::images::Found], printer: &Printer) {
    for f in list {
        let at = if f.path.is_empty() {
            String::new()
        } else {
            format!(" `{}`", f.path)
        };
        printer.warn(&format!(
            "{}:{}{at} = `{}` left as it is: {}",
            f.file,
            f.line,
            f.value,
            f.reason.as_deref().unwrap_or("not readable")
        ));
    }
}

/// A bump's outcome, as `flowship bump` reports it.
pub fn bump(o: &bump::Outcome, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    if printer.is_json() {
        printer.json(&json!({ "gitops": o, "dry_run": false }))?;
    } else {
        printer.data(&bump_lines(o))?;
    }
    bump_narration(o, printer);
    let vars: Vec<(&str, String)> = o
        .commit
        .iter()
        .map(|c| ("FLOWSHIP_GITOPS_COMMIT", c.clone()))
        .collect();
    dotenv(settings, &vars)
}

pub use crate::gitops::commit::short;

/// Deployments as `flowship register` reports them; failures make it exit 1, naming what was done.
pub fn register(
    o: &crate::ops::register::Outcome,
    dry_run: bool,
    printer: &Printer,
) -> Result<(), Error> {
    if printer.is_json() {
        printer.json(&json!({"prefect": {"deployments": o.deployments}, "dry_run": dry_run}))?;
    } else {
        printer.data(&deployment_lines(o, dry_run))?;
    }
    let count = |a: &str| o.deployments.iter().filter(|d| d.action == a).count();
    let deleted = match count("deleted") {
        0 => String::new(),
        n => format!(", {n} deleted"),
    };
    printer.info(&format!(
        "{}{} created, {} updated, {} unchanged{deleted}, {} failed",
        if dry_run { "dry run: " } else { "" },
        count("created"),
        count("updated"),
        count("unchanged"),
        count("failed")
    ));
    registration_failures(o)
}

/// exit 1 when a deployment failed, naming which were registered (a re-run finishes the job).
pub fn registration_failures(o: &crate::ops::register::Outcome) -> Result<(), Error> {
    let failed = o.failed();
    if failed.is_empty() {
        return Ok(());
    }
    let done: Vec<&str> = o
        .deployments
        .iter()
        .filter(|d| d.action != "failed")
        .map(|d| d.name.as_str())
        .collect();
    Err(Error::Reported(format!(
        "register: {} of {} deployments failed ({}); registered: {}. Re-running finishes the job",
        failed.len(),
        o.deployments.len(),
        failed
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if done.is_empty() {
            "none".to_string()
        } else {
            done.join(", ")
        }
    )))
}

/// One line per deployment (action, name, id), its field changes, and its error.
pub fn deployment_lines(o: &crate::ops::register::Outcome, dry_run: bool) -> String {
    let width = o
        .deployments
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in &o.deployments {
        let action = if dry_run && d.action != "failed" {
            format!("would be {}", d.action)
        } else {
            d.action.to_string()
        };
        out.push_str(&format!(
            "{:<16} {:<width$}  {}\n",
            action,
            d.name,
            d.id.as_deref().unwrap_or("")
        ));
        for c in &d.changes {
            out.push_str(&format!(
                "    {}: {} -> {}\n",
                c.field,
                compact(&c.old),
                compact(&c.new)
            ));
        }
        if let Some(e) = &d.error {
            out.push_str(&format!("    error: {e}\n"));
        }
    }
    out
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// An image plan, as a dry run shows it.
pub fn image_plan(p: &crate::ops::image::Plan, printer: &Printer) -> Result<(), Error> {
    for w in &p.warnings {
        printer.warn(w);
    }
    for n in &p.notes {
        printer.info(n);
    }
    printer.info(&format!(
        "dry run: {} is {}; {} of {} blob(s) ({:.1} MiB) to upload, tags {} to set",
        p.reference(),
        if p.present {
            "in the registry already"
        } else {
            "not in the registry"
        },
        p.blobs_missing,
        p.blobs,
        p.bytes_missing as f64 / 1048576.0,
        p.tags
            .iter()
            .filter(|t| !p.tagged.contains(t))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(s) = p.signature.as_ref().filter(|s| !s.present) {
        printer.info(&format!(
            "dry run: would write {} signature(s) to {}{}",
            s.signatures,
            s.tag,
            s.key
                .as_ref()
                .map(|k| format!(", signing with key {k}"))
                .unwrap_or_default()
        ));
    }
    if printer.is_json() {
        printer.json(&json!({"image": p, "dry_run": true}))
    } else {
        printer.data(&format!("{}\n", p.reference()))
    }
}

/// A verified image: what holds, on stderr; the image by digest on stdout (or the report as JSON).
pub fn verify(
    r: &crate::ops::verify::Report,
    rebuilt: Option<&crate::ops::rebuild::Rebuilt>,
    printer: &Printer,
) -> Result<(), Error> {
    printer.info(&format!(
        "signature: verified with key {} (signed for {})",
        r.signature.key, r.signature.reference
    ));
    printer.info(&format!(
        "provenance{}: {} built it{} ({})",
        if r.provenance.signed {
            " (signed by the key)"
        } else {
            " (unsigned referrer)"
        },
        r.provenance.builder,
        r.provenance
            .commit
            .as_ref()
            .map(|c| format!(" from commit {c}"))
            .unwrap_or_default(),
        r.provenance.artifact
    ));
    if r.sboms.is_empty() {
        printer.warn("no SBOM among its referrers");
    } else {
        printer.info(&format!("SBOM: {}", r.sboms.join(", ")));
    }
    if let Some(b) = rebuilt {
        if !b.same {
            return Err(Error::Policy {
                message: format!(
                    "{}: rebuilt from the checkout as {}: not the same image",
                    r.image, b.digest
                ),
                hint: Some("the build is not reproducible from this checkout: compare the base (its tag may have moved), the installer's version and the requirements with the provenance (`--output json` shows it)".into()),
            });
        }
        printer.info(&format!("rebuilt: the same digest, {}", b.digest));
    }
    if printer.is_json() {
        printer.json(&json!({"verified": r, "rebuilt": rebuilt}))
    } else {
        printer.data(&format!("{}\n", r.image))
    }
}

/// A pushed (or laid out) image: narration, the reference on stdout, the dotenv report.
pub fn image(
    o: &crate::ops::image::Outcome,
    settings: &Settings,
    printer: &Printer,
) -> Result<(), Error> {
    for w in &o.warnings {
        printer.warn(w);
    }
    if o.pushed {
        printer.info(&format!(
            "pushed {}: {} blob(s) uploaded ({:.1} MiB), {} already there, {} mounted, {:.2} s",
            o.reference,
            o.stats.blobs_uploaded,
            o.stats.bytes_uploaded as f64 / 1048576.0,
            o.stats.blobs_skipped,
            o.stats.blobs_mounted,
            o.stats.seconds
        ));
    } else {
        printer.info(&format!("{} is in place; nothing to push", o.reference));
    }
    if printer.is_json() {
        printer.json(&json!({"image": o, "push": o.stats}))?;
    } else {
        printer.data(&format!("{}\n", o.reference))?;
    }
    dotenv(settings, &image_vars(o))
}

/// `FLOWSHIP_IMAGE` (repo:tag@digest), `FLOWSHIP_IMAGE_DIGEST`, `FLOWSHIP_IMAGE_TAG`.
pub fn image_vars(o: &crate::ops::image::Outcome) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("FLOWSHIP_IMAGE", o.reference.clone()),
        ("FLOWSHIP_IMAGE_DIGEST", o.digest.clone()),
    ];
    if let Some(t) = o.tags.first() {
        v.push(("FLOWSHIP_IMAGE_TAG", t.clone()));
    }
    v
}

/// A release's plan (dry run, or `--plan-out`): every action, in order.
pub fn release_plan(p: &crate::ops::release::Plan, printer: &Printer) -> Result<(), Error> {
    for w in &p.image.warnings {
        printer.warn(w);
    }
    for n in p.image.notes.iter().chain(&p.gitops.notes) {
        printer.info(n);
    }
    if printer.is_json() {
        return printer.json(&json!({
            "environment": p.environment, "actions": p.actions(), "image": p.image, "gitops": p.gitops,
            "prefect": {"api_url": p.prefect.api_url, "pools": p.prefect.pools, "deployments": p.prefect.deployments},
            "dry_run": true,
        }));
    }
    let mut out = String::new();
    let i = &p.image;
    out.push_str(&format!(
        "image       {}  {}\n",
        i.reference(),
        if i.present {
            "in the registry".to_string()
        } else {
            format!(
                "push {} of {} blob(s), {:.1} MiB",
                i.blobs_missing,
                i.blobs,
                i.bytes_missing as f64 / 1048576.0
            )
        }
    ));
    for r in i.referrers.iter().filter(|r| !r.present) {
        out.push_str(&format!(
            "referrer    attach {} {}\n",
            r.artifact_type, r.digest
        ));
    }
    let untagged: Vec<&String> = i.tags.iter().filter(|t| !i.tagged.contains(t)).collect();
    if !untagged.is_empty() {
        out.push_str(&format!(
            "tags        {}\n",
            untagged
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str(&format!(
        "gitops      {} ({}): {}\n",
        p.gitops.repo,
        p.gitops.branch,
        if p.gitops.is_empty() {
            "nothing to change".to_string()
        } else {
            format!(
                "{} change(s)",
                p.gitops.changes.len() + p.gitops.extras.len()
            )
        }
    ));
    out.push_str(&p.gitops.diff);
    for e in &p.gitops.extras {
        out.push_str(&format!("    {} {}\n", e.action, e.path));
    }
    for pool in &p.prefect.pools {
        if let Some(kind) = pool.create.as_ref().filter(|_| !pool.exists) {
            out.push_str(&format!(
                "work pool   create `{}` (type {kind})\n",
                pool.name
            ));
        }
        if let Some(b) = &pool.refresh_block {
            out.push_str(&format!(
                "work pool   `{}`: update its registry credentials block `{b}` (the login changed)\n",
                pool.name
            ));
        }
    }
    out.push_str(&deployment_lines(
        &crate::ops::register::preview(&p.prefect),
        true,
    ));
    printer.data(&out)?;
    printer.info("dry run: nothing written");
    Ok(())
}

/// What a release did: one JSON document, or a summary a person reads in the job log; and the dotenv report.
pub fn release(
    o: &crate::ops::release::Outcome,
    settings: &Settings,
    printer: &Printer,
) -> Result<(), Error> {
    bump_narration(&o.gitops, printer);
    if printer.is_json() {
        printer.json(&json!({
            "environment": o.environment, "image": o.image, "push": o.image.stats, "gitops": o.gitops,
            "prefect": {"deployments": o.prefect.deployments}, "dry_run": false,
        }))?;
    } else {
        let mut out = String::new();
        out.push_str(&format!(
            "released {}{}\n",
            o.image.reference,
            o.environment
                .as_deref()
                .map(|e| format!(" to {e}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "  image     {}\n",
            if o.image.pushed {
                "pushed"
            } else {
                "already in the registry"
            }
        ));
        let commit = o.gitops.commit.as_deref().map(short).unwrap_or("-");
        out.push_str(&format!(
            "  gitops    {} {} on {} ({})\n",
            if o.gitops.pushed {
                "committed"
            } else {
                "unchanged at"
            },
            commit,
            o.gitops.branch,
            o.gitops.repo
        ));
        if let Some(mr) = &o.gitops.merge_request {
            out.push_str(&format!(
                "  merge request {}\n",
                mr.url.as_deref().unwrap_or(&mr.source_branch)
            ));
        }
        for d in &o.prefect.deployments {
            out.push_str(&format!(
                "  {:<10}{}  {}\n",
                d.action,
                d.name,
                d.url.as_deref().unwrap_or("")
            ));
        }
        printer.data(&out)?;
    }
    let mut vars = image_vars(&o.image);
    if let Some(c) = &o.gitops.commit {
        vars.push(("FLOWSHIP_GITOPS_COMMIT", c.clone()));
    }
    if let Some(e) = &o.environment {
        vars.push(("FLOWSHIP_ENVIRONMENT", e.clone()));
    }
    dotenv(settings, &vars)?;
    registration_failures(&o.prefect)
}

/// Every environment's status: a table (human) or one document; exit 4 on drift, 1 when unknown.
pub fn status(envs: &[crate::ops::status::Environment], printer: &Printer) -> Result<(), Error> {
    let in_sync = envs.iter().all(|e| e.in_sync());
    if printer.is_json() {
        printer.json(&json!({"in_sync": in_sync, "environments": envs}))?;
    } else {
        let mut out = String::new();
        for e in envs {
            let name = e.environment.as_deref().unwrap_or("(default)");
            let state = match (&e.error, e.drift.is_empty()) {
                (Some(_), _) => "UNKNOWN",
                (None, true) => "in sync",
                (None, false) => "DRIFT",
            };
            out.push_str(&format!("{name}  {state}\n"));
            if let Some(p) = &e.gitops {
                out.push_str(&format!(
                    "  gitops    {} ({}, {})\n",
                    p.digest.as_deref().unwrap_or("-"),
                    p.branch,
                    short(&p.commit)
                ));
                for pl in &p.places {
                    out.push_str(&format!(
                        "            {}:{}  {}  {}\n",
                        pl.file, pl.line, pl.path, pl.value
                    ));
                }
            }
            if let Some(r) = &e.registry {
                out.push_str(&format!(
                    "  registry  {} {}{}\n",
                    r.repository,
                    match r.present {
                        Some(true) => "has the digest",
                        Some(false) => "LACKS the digest",
                        None => "-",
                    },
                    match (&r.tag, &r.tag_digest) {
                        (Some(t), Some(d)) => format!("; tag {t} -> {d}"),
                        (Some(t), None) => format!("; tag {t} missing"),
                        _ => String::new(),
                    }
                ));
            }
            for d in &e.deployments {
                out.push_str(&format!(
                    "  prefect   {:<9} {}  {}\n",
                    d.state,
                    d.name,
                    d.image.as_deref().unwrap_or("")
                ));
            }
            for p in &e.pending {
                out.push_str(&format!(
                    "  pending   {p} (the next release registers it)\n"
                ));
            }
            for d in &e.drift {
                out.push_str(&format!("  drift     {}: {}\n", d.kind, d.detail));
            }
            if let Some(err) = &e.error {
                for line in err.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        printer.data(&out)?;
    }
    if envs.iter().any(|e| e.error.is_some()) {
        let message = "status: an environment could not be read".to_string();
        // A refusal by configuration stays exit 2 when status reports it, as it is everywhere else.
        return Err(if envs.iter().any(|e| e.error_exit == 2) {
            Error::ReportedRefusal(message)
        } else {
            Error::Reported(message)
        });
    }
    if !in_sync {
        let drifting: Vec<&str> = envs
            .iter()
            .filter(|e| !e.in_sync())
            .map(|e| e.environment.as_deref().unwrap_or("(default)"))
            .collect();
        return Err(Error::Drift(format!(
            "status: drift in {}",
            drifting.join(", ")
        )));
    }
    Ok(())
}
