//! Rollback: the environment's earlier releases are read from its GitOps history (the `Flowship-Image:`
//! trailer every flowship commit carries, and `Flowship-Environment:` to tell environments apart), one is
//! chosen (`previous`, a tag, a digest, a commit), and it is released again: re-pinned in a new commit (never
//! a force-push; the same safety as any bump) together with a hold record, and the environment's deployments
//! re-registered with it. The hold keeps the next automatic release from rolling forward over it.

use super::{Context, bump, hold, pins, release};
use crate::error::Error;
use crate::output::Printer;
use crate::registry::Reference;
use crate::settings::Settings;

/// A release the history shows: the commit and the image it pinned.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub commit: String,
    pub image: String,
    /// What it was released with (its record at that commit); `None` for releases before records.
    #[serde(skip)]
    pub record: Option<super::record::Record>,
}

fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(str::trim)
}

/// The environment's releases, newest first: commits of its branch with a `Flowship-Image:` of its
/// repository, for this environment (commits without an environment trailer count for every environment,
/// as older bumps wrote none). Searches the last `depth` commits.
pub async fn releases(
    ctx: &Context<'_>,
    settings: &Settings,
    depth: usize,
) -> Result<Vec<Release>, Error> {
    let image = settings.image_for("rollback")?;
    let repository = image.value.repository_ref();
    let environment = settings.environment.as_ref().map(|e| e.value.clone());
    let mut bumper = pins::reader(ctx, settings, repository.clone(), depth).await?;
    let record_path = environment.as_deref().map(super::record::path);
    let history = tokio::task::spawn_blocking(move || {
        let h = bumper.history(depth)?;
        // Each release's record as its own commit left it.
        Ok::<_, Error>(
            h.into_iter()
                .map(|(commit, message)| {
                    let record = message
                        .contains("Flowship-Image: ")
                        .then_some(record_path.as_deref())
                        .flatten()
                        .and_then(|p| bumper.read_file_at(&commit, p))
                        .and_then(|t| super::record::Record::parse(&t));
                    (commit, message, record)
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("history panicked: {e}")))??;
    Ok(history
        .into_iter()
        .filter_map(|(commit, message, record)| {
            let img = trailer(&message, "Flowship-Image")?;
            let of_repo = Reference::parse(img).ok()?.repository_ref() == repository;
            let env_ok = match (trailer(&message, "Flowship-Environment"), &environment) {
                (Some(e), Some(want)) => e == want,
                _ => true,
            };
            (of_repo && env_ok).then(|| Release {
                commit,
                image: img.to_string(),
                record,
            })
        })
        .collect())
}

/// The image `--to` names: `previous` (the newest release whose digest is not pinned now), a tag, a
/// digest, or a commit of the branch.
pub fn choose(to: &str, releases: &[Release], current: Option<&str>) -> Result<Reference, Error> {
    let parsed: Vec<(Release, Reference)> = releases
        .iter()
        .filter_map(|r| Some((r.clone(), Reference::parse(&r.image).ok()?)))
        .collect();
    let found = match to {
        "previous" => parsed.iter().find(|(_, r)| r.digest.as_deref() != current),
        d if crate::registry::is_digest(d) => {
            parsed.iter().find(|(_, r)| r.digest.as_deref() == Some(d))
        }
        c if c.len() >= 7
            && c.chars().all(|x| x.is_ascii_hexdigit())
            && parsed.iter().any(|(r, _)| r.commit.starts_with(c)) =>
        {
            parsed.iter().find(|(r, _)| r.commit.starts_with(c))
        }
        t => parsed.iter().find(|(_, r)| r.tag.as_deref() == Some(t)),
    };
    let (_, image) = found.ok_or_else(|| Error::Usage {
        message: match to {
            "previous" => "the GitOps history shows no earlier release to go back to".to_string(),
            other => format!("no release of `{other}` in the environment's GitOps history"),
        },
        hint: Some(format!(
            "releases found (newest first): {}",
            if releases.is_empty() {
                "none".to_string()
            } else {
                releases
                    .iter()
                    .take(8)
                    .map(|r| format!("{} ({})", r.image, crate::gitops::commit::short(&r.commit)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    })?;
    if image.digest.is_none() {
        return Err(Error::Usage {
            message: format!(
                "the release `{}` was pinned by tag only; a rollback goes by digest",
                image
            ),
            hint: Some("roll back to a release flowship made (it pins by digest)".into()),
        });
    }
    Ok(image.clone())
}

/// Plan the rollback of the settings' environment to `to`.
pub async fn plan(
    ctx: &Context<'_>,
    settings: &Settings,
    to: &str,
    reason: Option<String>,
    base: release::Request,
    printer: &Printer,
) -> Result<release::Plan, Error> {
    let environment = settings
        .environment
        .as_ref()
        .map(|e| e.value.clone())
        .ok_or_else(|| Error::Usage {
            message: "rollback needs the environment".into(),
            hint: Some("pass --env E (the environments of flowship.yaml)".into()),
        })?;
    // The history first: the run's clone is made as deep as it needs, once, and the pins read from it.
    let releases = releases(ctx, settings, 200).await?;
    let current = pins::read(ctx, settings).await?.digest;
    let image = choose(to, &releases, current.as_deref())?;
    printer.info(&format!("rolling `{environment}` back to {image}"));
    // The deployments as that release registered them: its record (the newest release of that digest).
    let record = releases
        .iter()
        .filter(|r| Reference::parse(&r.image).ok().and_then(|i| i.digest) == image.digest)
        .find_map(|r| r.record.clone());
    if record.is_none() {
        printer.warn(&format!(
            "{image} was released before flowship recorded releases: its deployments are registered from this checkout's prefect.yaml, with its image"
        ));
    }
    let req = release::Request {
        tags: image.tag.iter().cloned().collect(),
        image: Some(image.clone()),
        hold: Some(reason.unwrap_or_else(|| format!("rollback --to {to}"))),
        subject: Some(format!("rollback {environment} to {image}")),
        record,
        ..base
    };
    release::plan(ctx, settings, &req, printer).await
}

/// Lift the environment's hold: one commit that removes the record, nothing else.
pub async fn lift(
    ctx: &Context<'_>,
    settings: &Settings,
    printer: &Printer,
) -> Result<bump::Outcome, Error> {
    let environment = settings
        .environment
        .as_ref()
        .map(|e| e.value.clone())
        .ok_or_else(|| Error::Usage {
            message: "--lift-hold needs the environment".into(),
            hint: Some("pass --env E".into()),
        })?;
    let image = settings
        .image
        .as_ref()
        .map(|i| i.value.repository_ref())
        .unwrap_or_default();
    // The image's values stay as they are: the probe target is never planned, only the record's removal.
    let mut req = bump::Request::reading(settings, image)?;
    req.extras.push(bump::Extra {
        path: hold::path(&environment),
        content: None,
    });
    req.subject = Some(format!("lift the hold on {environment}"));
    req.values = false;
    req.trailers
        .push(("Flowship-Hold-Lifted".into(), environment.clone()));
    let bumper = bump::open(ctx.clones(), req).await?;
    if bumper.read_file(&hold::path(&environment)).is_none() {
        printer.info(&format!("`{environment}` is not held; nothing to lift"));
    }
    let (bumper, plan) = tokio::task::spawn_blocking(move || {
        let p = bumper.plan()?;
        Ok::<_, Error>((bumper, p))
    })
    .await
    .map_err(|e| Error::Internal(format!("lift panicked: {e}")))??;
    bump::apply(bumper, plan).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(commit: &str, image: &str) -> Release {
        Release {
            commit: commit.into(),
            image: image.into(),
            record: None,
        }
    }

    #[test]
    fn choosing_what_to_roll_back_to() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let rs = vec![
            r("c3c3c3c3", &format!("h.example.com/f/e:3@{}", d('c'))),
            r("b2b2b2b2", &format!("h.example.com/f/e:2@{}", d('b'))),
            r("a1a1a1a1", &format!("h.example.com/f/e:1@{}", d('a'))),
        ];
        assert_eq!(
            choose("previous", &rs, Some(&d('c')))
                .unwrap()
                .tag
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            choose("1", &rs, Some(&d('c'))).unwrap().digest,
            Some(d('a'))
        );
        assert_eq!(
            choose(&d('b'), &rs, None).unwrap().tag.as_deref(),
            Some("2")
        );
        assert_eq!(
            choose("a1a1a1a", &rs, None).unwrap().tag.as_deref(),
            Some("1")
        );
        assert!(choose("9", &rs, None).is_err());
        assert!(choose("previous", &rs[..1], Some(&d('c'))).is_err());
        assert_eq!(
            trailer(
                "x\n\nFlowship-Image: a:1\nFlowship-Environment: prod\n",
                "Flowship-Environment"
            ),
            Some("prod")
        );
    }
}
