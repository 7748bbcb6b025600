//! `flowship verify IMAGE@DIGEST --key PUB`: the image's cosign signature and provenance, as a consumer
//! checks them (see `ops::verify`), and with `--rebuild` the image rebuilt from a checkout (`ops::rebuild`).
//! Exit 0 when all hold, 3 naming what does not.

use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::ops::Context;
use crate::registry::Reference;

pub async fn run(args: &VerifyArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let image = Reference::parse(&args.reference).map_err(|e| Error::Usage {
        message: format!("IMAGE `{}`: {e}", args.reference),
        hint: Some("registry/repository@sha256:...".into()),
    })?;
    let path = settings.verify.key.as_ref().ok_or_else(|| Error::Usage {
        message: "verify needs the public key to check the signature with".into(),
        hint: Some("pass --key cosign.pub (or set verify.key / FLOWSHIP_VERIFY_KEY)".into()),
    })?;
    let key = crate::ops::image::sign::public_key(path)?;
    let report = crate::ops::verify::run(ctx, settings, &image, &key).await?;
    let rebuilt = match &args.rebuild {
        Some(checkout) => {
            printer.info(&format!(
                "rebuilding {} from {}",
                report.image,
                checkout.display()
            ));
            let r = crate::ops::rebuild::run(
                ctx,
                settings,
                &report.digest,
                &report.provenance.statement,
                checkout,
            )
            .await?;
            Some(r)
        }
        None => None,
    };
    crate::report::verify(&report, rebuilt.as_ref(), printer)
}
