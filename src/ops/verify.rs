//! `verify`: what a consumer of the image can check without trusting the pipeline that made it: a cosign
//! signature by the given key for the image's digest (at its `.sig` tag, as cosign and podman find it), and
//! SLSA provenance about that digest: signed by the key (cosign's attestation at `.att`), else among its
//! referrers. Reads only.

use super::image::sign;
use crate::error::Error;
use crate::image::{manifest, provenance};
use crate::registry::blobs::MAX_CONFIG;
use crate::registry::session::Session;
use crate::registry::{Reference, referrers};
use crate::settings::Settings;
use crate::sigstore::{PublicKey, attachment, dsse, verify};
use serde::Serialize;

/// What holds for the image.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `registry/repository@digest`.
    pub image: String,
    pub digest: String,
    pub signature: verify::Valid,
    pub provenance: Provenance,
    /// The SBOM referrers' artifact types (CycloneDX, SPDX), when there are any.
    pub sboms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Provenance {
    /// The provenance artifact's manifest digest.
    pub artifact: String,
    pub builder: String,
    pub commit: Option<String>,
    /// Signed by the key (cosign's attestation at the `.att` tag), not only a referrer anyone could attach.
    pub signed: bool,
    /// The statement itself, for `--rebuild`.
    #[serde(skip)]
    pub statement: Vec<u8>,
}

fn refused(image: &str, what: String, hint: &str) -> Error {
    Error::Policy {
        message: format!("{image}: {what}"),
        hint: Some(hint.into()),
    }
}

pub async fn run(
    ctx: &crate::ops::Context<'_>,
    settings: &Settings,
    image: &Reference,
    key: &PublicKey,
) -> Result<Report, Error> {
    let session = ctx.registry(settings, image).await?;
    let repo = &image.repository;
    let reference = image
        .digest
        .clone()
        .or(image.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (_, _, digest) = session
        .manifest_get(repo, &reference)
        .await?
        .ok_or_else(|| Error::Usage {
            message: format!("{image} does not exist"),
            hint: Some("check the reference (registry/repository@sha256:...)".into()),
        })?;
    let name = format!("{}@{digest}", image.repository_ref());
    let signatures = sign::read(&session, repo, &digest).await?;
    let signature = verify::check(&signatures, &digest, key).map_err(|r| {
        refused(
            &image.repository_ref(),
            r.to_string(),
            match r {
                verify::Refusal::Unsigned { .. } => {
                    "sign it (flowship build/release with FLOWSHIP_SIGN_KEY), or verify the digest that was released"
                }
                _ => "verify with the public key of the key that signs releases (cosign.pub)",
            },
        )
    })?;
    // Signed provenance (cosign's attestation) first: it holds under the key, as the signature does.
    let mut provenance = Err("has no SLSA provenance among its referrers".to_string());
    let mut signed = false;
    let tag = attachment::attestation_tag(&digest);
    for (d, envelope) in sign::read_tag(&session, repo, &tag).await? {
        if d.media_type != dsse::ENVELOPE {
            continue;
        }
        if let Ok(statement) = dsse::open(&envelope, key)
            && let Ok((b, c)) = provenance::check(&statement, &digest)
        {
            provenance = Ok((format!("{tag} {}", d.digest), b, c, statement));
            signed = true;
            break;
        }
    }
    let (found, _) = referrers::list(&session, repo, &digest).await?;
    let mut sboms = Vec::new();
    for d in found {
        let kind = d.artifact_type.clone().unwrap_or_default();
        if kind.contains("cyclonedx") || kind.contains("spdx") {
            sboms.push(kind);
            continue;
        }
        if kind != provenance::MEDIA_TYPE || provenance.is_ok() {
            continue;
        }
        provenance = read_provenance(&session, repo, &d.digest, &digest)
            .await?
            .map(|(b, c, s)| (d.digest.clone(), b, c, s));
    }
    let (artifact, builder, commit, statement) = provenance.map_err(|why| {
        refused(
            &name,
            format!("the signature holds, but it {why}"),
            "build and push it with flowship, which attaches provenance to every image it builds",
        )
    })?;
    Ok(Report {
        image: name,
        digest,
        signature,
        provenance: Provenance {
            artifact,
            builder,
            commit,
            signed,
            statement,
        },
        sboms,
    })
}

/// The provenance artifact `artifact`'s statement, checked against the image's digest.
async fn read_provenance(
    session: &Session,
    repo: &str,
    artifact: &str,
    digest: &str,
) -> Result<Result<(String, Option<String>, Vec<u8>), String>, Error> {
    let Some((bytes, _, d)) = session.manifest_get(repo, artifact).await? else {
        return Ok(Err(format!(
            "lists provenance {artifact}, which is not there"
        )));
    };
    let Ok((_, refs)) = manifest::references(&bytes, &d) else {
        return Ok(Err(format!("has provenance {artifact} that does not read")));
    };
    let Some(layer) = refs
        .iter()
        .skip(1)
        .find(|l| l.media_type == provenance::MEDIA_TYPE)
    else {
        return Ok(Err(format!(
            "has provenance {artifact} without a statement"
        )));
    };
    let statement = session.blob_bytes(repo, &layer.digest, MAX_CONFIG).await?;
    Ok(provenance::check(&statement, digest)
        .map(|(b, c)| (b, c, statement.clone()))
        .map_err(|e| format!("has provenance that {e}")))
}
