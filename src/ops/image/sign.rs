//! Signing a planned image: cosign's signature manifest at the `.sig` tag of its digest, holding the
//! signatures the destination already has, the source's when the image is copied (promote, a handoff), and
//! this run's when a key is configured; likewise cosign's attestation manifest at `.att`, holding a built
//! image's provenance signed as a DSSE envelope. Planned with the image, so that `--dry-run` shows it and a
//! policy can check the signatures the destination *will* have before anything is written; RFC 6979 makes
//! the signature deterministic, so a re-run finds it in place.

use super::Plan;
use crate::error::Error;
use crate::image::provenance;
use crate::probe::{Check, ServiceReport, Status, check, fail};
use crate::registry::RegistryError;
use crate::registry::blobs::{Descriptor, MAX_CONFIG, Source};
use crate::registry::push::{Blob, Manifest, Options};
use crate::registry::session::Session;
use crate::settings::Settings;
use crate::sigstore::{PrivateKey, PublicKey, attachment, dsse, payload, verify};
use serde::Serialize;
use std::sync::Arc;

/// An attachment manifest the image will have (its signatures at `.sig`, its attestations at `.att`), and
/// whether the registry has it already.
#[derive(Serialize)]
pub struct SignaturePlan {
    /// `sha256-<hex>.sig` or `sha256-<hex>.att`.
    pub tag: String,
    /// The repository this run signs for (the payload's `docker-reference`), when it signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_for: Option<String>,
    /// The signing key's fingerprint, when this run signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Signatures (attestations) in the manifest, this run's included.
    pub signatures: usize,
    pub present: bool,
    #[serde(skip)]
    manifest: Manifest,
    #[serde(skip)]
    blobs: Vec<Blob>,
    /// Every layer with its payload's bytes: what a policy checks.
    #[serde(skip)]
    pub(crate) payloads: Vec<(Descriptor, Vec<u8>)>,
}

fn key_error(source: &crate::source::Source, e: crate::sigstore::KeyError) -> Error {
    Error::Usage {
        message: format!("{source}: the signing key {e}"),
        hint: Some(e.hint().into()),
    }
}

/// The key to sign with: `None` when signing was not asked for; no key when it was is an error (exit 2).
pub fn key(settings: &Settings) -> Result<Option<PrivateKey>, Error> {
    let s = &settings.sign;
    let Some(pem) = &s.key else {
        if s.required.value {
            return Err(Error::Usage {
                message: format!(
                    "{}: signing was asked for, and there is no signing key",
                    s.required.source
                ),
                hint: Some("set FLOWSHIP_SIGN_KEY (a masked variable) or FLOWSHIP_SIGN_KEY_FILE to an ECDSA P-256 PEM key, e.g. cosign.key with its password in FLOWSHIP_SIGN_PASSWORD or COSIGN_PASSWORD".into()),
            });
        }
        return Ok(None);
    };
    PrivateKey::from_pem(&pem.value, s.password.as_ref().map(|p| &p.value))
        .map(Some)
        .map_err(|e| key_error(&pem.source, e))
}

/// The public key at `path` (a policy's, or `verify --key`).
pub fn public_key(path: &crate::source::Sourced<std::path::PathBuf>) -> Result<PublicKey, Error> {
    let text = std::fs::read_to_string(&path.value).map_err(|e| Error::Usage {
        message: format!(
            "{}: cannot read the public key `{}`: {e}",
            path.source,
            path.value.display()
        ),
        hint: Some("give the path of a PEM public key (cosign.pub)".into()),
    })?;
    PublicKey::from_pem(&text).map_err(|e| Error::Usage {
        message: format!("{}: `{}` {e}", path.source, path.value.display()),
        hint: Some(e.hint().into()),
    })
}

/// The layers of the attachment manifest at `tag` in `repository`, each with its blob (none when there is
/// no such tag).
pub async fn read_tag(
    session: &Session,
    repository: &str,
    tag: &str,
) -> Result<Vec<(Descriptor, Vec<u8>)>, Error> {
    let found = match session.manifest_get(repository, tag).await {
        Ok(f) => f,
        Err(RegistryError::ProjectNotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Some((bytes, _, _)) = found else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for d in attachment::layers(&bytes) {
        let payload = session
            .blob_bytes(repository, &d.digest, MAX_CONFIG)
            .await?;
        out.push((d, payload));
    }
    Ok(out)
}

/// The signature manifest's layers in `repository`, each with its payload (none when there is no `.sig`).
pub async fn read(
    session: &Session,
    repository: &str,
    digest: &str,
) -> Result<Vec<(Descriptor, Vec<u8>)>, Error> {
    read_tag(session, repository, &attachment::tag(digest)).await
}

/// Where a copied image comes from: its signatures travel with it.
pub struct From<'a> {
    pub session: &'a Arc<Session>,
    pub repository: &'a str,
    pub same_registry: bool,
}

/// Plan the image's signature manifest (`.sig`) and, for a built image, its signed provenance (`.att`):
/// nothing when nothing signs it and nothing is signed.
pub async fn plan(
    settings: &Settings,
    plan: &mut Plan,
    from: Option<From<'_>>,
) -> Result<(), Error> {
    let key = key(settings)?;
    if plan.session.is_none() {
        if key.is_some() {
            plan.notes
                .push("not signed: the image goes to no registry".into());
        }
        return Ok(());
    }
    let sig = key.as_ref().map(|k| {
        let p = payload::make(&plan.repository, &plan.digest);
        (attachment::layer(&p, &k.sign(&p)), p)
    });
    let att = match (&key, &plan.provenance) {
        (Some(k), Some(statement)) => {
            let envelope = dsse::seal(statement, k);
            let d = attachment::attestation_layer(&envelope, provenance::PREDICATE_TYPE);
            Some((d, envelope))
        }
        _ => None,
    };
    let fingerprint = key.map(|k| k.public().fingerprint());
    plan.signature = attachment_plan(plan, from.as_ref(), attachment::tag(&plan.digest), sig)
        .await?
        .map(|mut s| {
            s.key = fingerprint.clone();
            s.signed_for = fingerprint.as_ref().map(|_| plan.repository.clone());
            s
        });
    plan.attestation = attachment_plan(
        plan,
        from.as_ref(),
        attachment::attestation_tag(&plan.digest),
        att,
    )
    .await?
    .map(|mut s| {
        s.key = fingerprint.clone();
        s
    });
    Ok(())
}

/// The manifest at `tag`: the destination's layers, the source's (a copy), and `new` (this run's).
async fn attachment_plan(
    plan: &mut Plan,
    from: Option<&From<'_>>,
    tag: String,
    new: Option<(Descriptor, Vec<u8>)>,
) -> Result<Option<SignaturePlan>, Error> {
    let session = plan.session.clone().expect("checked by the caller");
    let there = read_tag(&session, &plan.target.repository, &tag).await?;
    let mut layers: Vec<Descriptor> = there.iter().map(|(d, _)| d.clone()).collect();
    let mut payloads = there;
    let mut blobs = Vec::new();
    if let Some(f) = from {
        for (d, bytes) in read_tag(f.session, f.repository, &tag).await? {
            if let Some(m) = attachment::merged(&layers, &d) {
                layers = m;
                blobs.push(Blob {
                    descriptor: d.clone(),
                    source: Source::Remote {
                        session: f.session.clone(),
                        repository: f.repository.into(),
                    },
                    mount_from: f.same_registry.then(|| f.repository.into()),
                });
                payloads.push((d, bytes));
            }
        }
    }
    let scratch = plan.scratch()?;
    if let Some((d, bytes)) = new
        && let Some(m) = attachment::merged(&layers, &d)
    {
        layers = m;
        blobs.push(file_blob(scratch.path(), &d, &bytes)?);
        payloads.push((d, bytes));
    }
    if layers.is_empty() {
        return Ok(None);
    }
    let present = blobs.is_empty();
    let (manifest, config_d, config) = attachment::manifest(&layers);
    if !present {
        blobs.push(file_blob(scratch.path(), &config_d, &config)?);
    }
    Ok(Some(SignaturePlan {
        tag,
        signed_for: None,
        key: None,
        signatures: layers.len(),
        present,
        manifest,
        blobs,
        payloads,
    }))
}

fn file_blob(dir: &std::path::Path, d: &Descriptor, bytes: &[u8]) -> Result<Blob, Error> {
    let path = dir.join(d.digest.replace(':', "-"));
    std::fs::write(&path, bytes).map_err(|e| Error::Local {
        what: format!("cannot write {}", path.display()),
        reason: e.to_string(),
    })?;
    Ok(Blob {
        descriptor: d.clone(),
        source: Source::File(path),
        mount_from: None,
    })
}

/// Push the signature manifest (its new blobs first) under its tag.
pub async fn apply(
    session: &Arc<Session>,
    repository: &str,
    s: &SignaturePlan,
    opts: Options,
) -> Result<(), Error> {
    crate::registry::push::push(session.clone(), repository, s.blobs.clone(), &[], opts).await?;
    session
        .manifest_put(
            repository,
            &s.tag,
            &s.manifest.bytes,
            &s.manifest.media_type,
        )
        .await?;
    Ok(())
}

/// The environment's policy (`verify.key`): the image the plan will leave in the registry must carry a
/// signature by that key for its digest. Checked on the plan, before anything is written: exit 3 when not.
pub fn require(settings: &Settings, plan: &Plan) -> Result<Option<verify::Valid>, Error> {
    let Some(path) = &settings.verify.key else {
        return Ok(None);
    };
    let key = public_key(path)?;
    let payloads = plan
        .signature
        .as_ref()
        .map(|s| s.payloads.as_slice())
        .unwrap_or_default();
    verify::check(payloads, &plan.digest, &key)
        .map(Some)
        .map_err(|r| refusal(&r, path, settings))
}

fn refusal(
    r: &verify::Refusal,
    path: &crate::source::Sourced<std::path::PathBuf>,
    settings: &Settings,
) -> Error {
    let env = settings
        .environment
        .as_ref()
        .map(|e| format!("environment `{}`", e.value))
        .unwrap_or_else(|| "this release".into());
    Error::Policy {
        message: format!(
            "{env} requires images signed by {} ({}): {r}; nothing was written",
            path.value.display(),
            path.source
        ),
        hint: Some(match r {
            verify::Refusal::Unsigned { .. } => "release an image the pipeline signed (FLOWSHIP_SIGN_KEY in the build job), or sign this one with the environment's key".into(),
            _ => "sign with the private key of the environment's verify.key, or fix verify.key".into(),
        }),
    }
}

/// The signing key (it reads, and opens with its password) and the environment's `verify.key`, when either
/// is configured: a key that does not read would fail the first push, not the doctor.
pub fn probe(settings: &Settings) -> Option<ServiceReport> {
    if !settings.sign.wanted() && settings.verify.key.is_none() {
        return None;
    }
    let mut checks = Vec::new();
    let private = match key(settings) {
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
        match public_key(path) {
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
