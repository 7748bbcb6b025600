//! Promotion between environments: the target environment is pinned to exactly the digest the source
//! environment's GitOps branch pins (read from its targets; no rebuild, no tag lookup), copied into the
//! target's repository when that is another, and the target's deployments registered as the source
//! environment's release record says (what runs there, not what the checkout holds now). A release in every
//! other respect (hold, saved plans, resumable), so it is `release::plan` with the image and record given.

use super::{Context, pins, release};
use crate::error::Error;
use crate::output::Printer;
use crate::registry::Reference;
use crate::settings::Settings;

/// The image `from` pins: its repository at the digest every one of its targets agrees on.
pub async fn pinned_image(
    ctx: &Context<'_>,
    from: &Settings,
    name: &str,
) -> Result<(Reference, pins::Pins), Error> {
    let pins = pins::read(ctx, from).await?;
    let digest = match (pins.digests.as_slice(), pins.places.is_empty()) {
        (_, true) => {
            return Err(Error::Usage {
                message: format!(
                    "environment `{name}` pins no image of its repository on {} ({})",
                    pins.branch, pins.repo
                ),
                hint: Some(format!("release to `{name}` first")),
            });
        }
        ([d], _) => d.clone(),
        ([], _) => {
            return Err(Error::Usage {
                message: format!(
                    "environment `{name}` pins {} by tag only ({}): promotion goes by digest",
                    pins.tags.join(", "),
                    pins.places
                        .iter()
                        .map(|p| format!("{}:{}", p.file, p.line))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: Some(format!(
                    "release to `{name}` with flowship (it pins by digest), then promote"
                )),
            });
        }
        (many, _) => {
            return Err(Error::Usage {
                message: format!(
                    "environment `{name}`'s targets pin different digests: {}",
                    many.join(", ")
                ),
                hint: Some(format!(
                    "release to `{name}` so that its targets agree, then promote"
                )),
            });
        }
    };
    let repo = from
        .image
        .as_ref()
        .expect("pins::read checked it")
        .value
        .clone();
    let mut r = Reference::parse(&format!("{}@{digest}", repo.repository_ref()))
        .map_err(|e| Error::Internal(e.to_string()))?;
    r.tag = pins.tag.clone();
    Ok((r, pins))
}

/// Plan `to`'s release of the image `from` pins.
pub async fn plan(
    ctx: &Context<'_>,
    from: &Settings,
    from_name: &str,
    to: &Settings,
    mut req: release::Request,
    printer: &Printer,
) -> Result<release::Plan, Error> {
    let (image, pins) = pinned_image(ctx, from, from_name).await?;
    printer.info(&format!(
        "`{from_name}` pins {} ({} place(s) on {}, commit {})",
        image,
        pins.places.len(),
        pins.branch,
        crate::gitops::commit::short(&pins.commit)
    ));
    if req.tags.is_empty() {
        req.tags.extend(image.tag.clone());
    }
    // The deployments as the source environment released them, with its digest: never this checkout's
    // definitions with another environment's image.
    match pins
        .record
        .filter(|r| r.digest().as_deref() == image.digest.as_deref())
    {
        Some(record) => req.record = Some(record),
        None => printer.warn(&format!(
            "`{from_name}` has no release record of {image} (released before flowship recorded releases): the deployments are registered from this checkout's prefect.yaml"
        )),
    }
    req.image = Some(image);
    release::plan(ctx, to, &req, printer).await
}
