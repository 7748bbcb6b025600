//! The pull proof (issue 20): before a release pins a digest, the *cluster's* account (`verify.pull_username`
//! with `FLOWSHIP_PULL_PASSWORD`, e.g. a Harbor robot with pull only; not the CI's push account) reads the
//! digest's manifests and every blob, and Harbor's project policies that would refuse the pull are read and
//! checked: cosign content trust, and "prevent vulnerable images" at a severity (which also refuses an image
//! never scanned). A failure is a refusal (exit 3) before any GitOps write: pinning an image the cluster
//! cannot pull would look green while every pod sits in ImagePullBackOff. Reads only.

use crate::error::Error;
use crate::image::manifest;
use crate::registry::harbor::{Harbor, PullPolicy, over_gate};
use crate::registry::session::Session;
use crate::registry::{Credential, Reference, RegistryError};
use crate::settings::Settings;

/// What the proof read.
#[derive(Debug)]
pub struct Proof {
    pub user: String,
    pub manifests: usize,
    pub blobs: usize,
    /// The Harbor policies checked, in words (`cosign signatures required: signed`).
    pub policies: Vec<String>,
}

fn refused(image: &str, what: String, hint: &str) -> Error {
    Error::Policy {
        message: format!("{image}: {what}; nothing was pinned"),
        hint: Some(hint.into()),
    }
}

/// Prove `reference` (`registry/repo@digest`) pullable with the cluster's account; `None` when no pull
/// account is configured.
pub async fn check(settings: &Settings, reference: &str) -> Result<Option<Proof>, Error> {
    let Some(account) = settings.verify.pull.clone() else {
        return Ok(None);
    };
    let image = Reference::parse(reference).map_err(|e| Error::Internal(e.to_string()))?;
    let digest = image
        .digest
        .clone()
        .ok_or_else(|| Error::Internal(format!("{reference} has no digest")))?;
    let user = account.username.value.clone();
    let http = crate::http::Http::new(&settings.http_config())?;
    let name = format!("{}@{digest}", image.repository_ref());
    let denied = |e: RegistryError| match e {
        e @ RegistryError::Transport { .. } => Error::Registry(e),
        RegistryError::Protocol {
            status: 412,
            detail,
            ..
        } => refused(
            &name,
            format!("the registry refuses to serve it by its project's policy: {detail}"),
            "meet the project's pull policy (Harbor: cosign signatures, a scan without findings at its \
             severity), or change the policy",
        ),
        e => refused(
            &name,
            format!("the cluster's pull account `{user}` cannot read it ({e})"),
            "give the pull account pull access to the project (Harbor: a robot account with the pull \
             permission), or fix verify.pull_username / FLOWSHIP_PULL_PASSWORD",
        ),
    };
    let session = Session::open(http.clone(), image.api_host(), Some(account.clone()))
        .await
        .map_err(denied)?;
    // The policies first: they name what Harbor would refuse; then every manifest and blob is read.
    let signed = session
        .manifest_digest(&image.repository, &signature_tag(&digest))
        .await
        .map_err(denied)?
        .is_some();
    let policies = harbor_policies(&http, &image, &digest, &name, account, signed).await?;
    let (manifests, blobs) = read_all(&session, &image.repository, &digest, &name, &user)
        .await
        .map_err(|e| match e {
            Walk::Registry(e) => denied(e),
            Walk::Refused(e) => e,
        })?;
    Ok(Some(Proof {
        user,
        manifests,
        blobs,
        policies,
    }))
}

enum Walk {
    Registry(RegistryError),
    Refused(Error),
}

impl From<RegistryError> for Walk {
    fn from(e: RegistryError) -> Self {
        Walk::Registry(e)
    }
}

/// Every manifest under `digest` (an index's children) and every blob they name, read with the pull scope.
async fn read_all(
    session: &Session,
    repository: &str,
    digest: &str,
    name: &str,
    user: &str,
) -> Result<(usize, usize), Walk> {
    let mut queue = vec![digest.to_string()];
    let (mut manifests, mut blobs) = (0, 0);
    while let Some(d) = queue.pop() {
        let Some((bytes, _, _)) = session.manifest_get(repository, &d).await? else {
            return Err(Walk::Refused(refused(
                name,
                format!("manifest {d} is not readable with the cluster's pull account `{user}`"),
                "give the pull account pull access to the repository, or check the registry's replication",
            )));
        };
        manifests += 1;
        let (children, layers) = manifest::references(&bytes, &d).map_err(|e| {
            Walk::Refused(refused(
                name,
                format!("manifest {d} {}", e.reason),
                "rebuild and push it",
            ))
        })?;
        queue.extend(children.into_iter().map(|c| c.digest));
        for b in layers {
            if !session.blob_pullable(repository, &b.digest).await? {
                return Err(Walk::Refused(refused(
                    name,
                    format!(
                        "blob {} is not readable with the cluster's pull account `{user}`",
                        b.digest
                    ),
                    "give the pull account pull access to the repository, or push the image again",
                )));
            }
            blobs += 1;
        }
    }
    Ok((manifests, blobs))
}

/// cosign's signature tag for a digest (`sha256-<hex>.sig`), as Harbor and podman find it.
fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Harbor's pull policies of the image's project, checked (nothing when the registry is not Harbor or its
/// API does not answer the pull account).
async fn harbor_policies(
    http: &crate::http::Http,
    image: &Reference,
    digest: &str,
    name: &str,
    account: Credential,
    signed: bool,
) -> Result<Vec<String>, Error> {
    let harbor = Harbor::new(http.clone(), image.api_host(), Some(account));
    let Some((project, _)) = image.repository.split_once('/') else {
        return Ok(Vec::new());
    };
    if !harbor.detect().await {
        return Ok(Vec::new());
    }
    let policy = match harbor.pull_policy(project).await {
        Ok(Some(p)) => p,
        // A robot account may not read the project's settings: the manifest and blob reads above stand.
        Ok(None) | Err(_) => return Ok(Vec::new()),
    };
    let mut checked = Vec::new();
    let PullPolicy {
        cosign,
        prevent_vulnerable,
    } = policy;
    if cosign {
        if !signed {
            return Err(refused(
                name,
                format!(
                    "Harbor project `{project}` requires cosign signatures (content trust) and the image has none"
                ),
                "sign releases (FLOWSHIP_SIGN_KEY / --sign), or turn off the project's cosign policy",
            ));
        }
        checked.push("cosign signatures required: signed".to_string());
    }
    if let Some(severity) = prevent_vulnerable {
        let result = harbor
            .scan_overview(&image.repository, digest)
            .await
            .map_err(Error::Registry)?;
        let Some(result) = result else {
            return Err(refused(
                name,
                format!(
                    "Harbor project `{project}` prevents vulnerable images ({severity} or higher) and this image \
                     has not been scanned, so Harbor would not serve it"
                ),
                "scan before pinning: harbor.scan_gate (FLOWSHIP_SCAN_GATE) scans and waits for the result",
            ));
        };
        if severity != "none" && over_gate(&result, &severity) {
            return Err(refused(
                name,
                format!(
                    "Harbor project `{project}` prevents images with {severity} or higher vulnerabilities from \
                     being pulled, and the scan found {}",
                    result.summary()
                ),
                "fix the vulnerabilities (a newer base image), or change the project's policy",
            ));
        }
        checked.push(format!("vulnerability policy ({severity}): passed"));
    }
    Ok(checked)
}
