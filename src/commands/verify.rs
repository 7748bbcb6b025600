//! `flowship verify IMAGE@DIGEST --key PUB`: the image's cosign signature and provenance, as a consumer
//! checks them (see `ops::verify`). Exit 0 when both hold, 3 naming what does not.

use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::output::Printer;
use crate::registry::Reference;
use crate::settings::Settings;

pub async fn run(args: &VerifyArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let image = Reference::parse(&args.reference).map_err(|e| Error::Usage {
        message: format!("IMAGE `{}`: {e}", args.reference),
        hint: Some("registry/repository@sha256:...".into()),
    })?;
    let path = settings.verify.key.as_ref().ok_or_else(|| Error::Usage {
        message: "verify needs the public key to check the signature with".into(),
        hint: Some("pass --key cosign.pub (or set verify.key / FLOWSHIP_VERIFY_KEY)".into()),
    })?;
    let key = crate::ops::image::sign::public_key(path)?;
    let report = crate::ops::verify::run(settings, &image, &key).await?;
    crate::report::verify(&report, printer)
}
