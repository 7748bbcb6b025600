//! Checking signatures as containers/image's `sigstoreSigned` policy does: some layer of the signature
//! manifest verifies under the key, and its payload names the image's digest. The repository a payload
//! names is reported, not required (cosign's `verify` does not require it either; a podman policy may).

use super::attachment::{SIMPLE_SIGNING, signature_of};
use super::key::PublicKey;
use super::payload;
use crate::registry::blobs::Descriptor;

/// A signature that holds: for the digest, under the key, signed for `reference`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Valid {
    pub reference: String,
    pub digest: String,
    pub key: String,
}

/// Why no signature holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{digest} is not signed (no cosign signature at its `.sig` tag)")]
    Unsigned { digest: String },
    #[error(
        "{digest} is signed, but not with the key {key}: none of its {count} signature(s) verifies with it"
    )]
    OtherKey {
        digest: String,
        key: String,
        count: usize,
    },
    #[error("{digest}'s signature by the key {key} is for another image ({other})")]
    OtherDigest {
        digest: String,
        key: String,
        other: String,
    },
}

/// The first signature in `layers` (each with its payload's bytes) that verifies under `key` for `digest`.
pub fn check(
    layers: &[(Descriptor, Vec<u8>)],
    digest: &str,
    key: &PublicKey,
) -> Result<Valid, Refusal> {
    let signatures: Vec<&(Descriptor, Vec<u8>)> = layers
        .iter()
        .filter(|(d, _)| d.media_type == SIMPLE_SIGNING)
        .collect();
    if signatures.is_empty() {
        return Err(Refusal::Unsigned {
            digest: digest.into(),
        });
    }
    let fingerprint = key.fingerprint();
    let mut other = None;
    for (d, bytes) in &signatures {
        let Some(sig) = signature_of(d) else {
            continue;
        };
        // The payload is the blob the descriptor names, or it is not the signed one.
        if crate::registry::digest::of(bytes) != d.digest || !key.verifies(bytes, &sig) {
            continue;
        }
        match payload::read(bytes) {
            Ok(claim) if claim.digest == digest => {
                return Ok(Valid {
                    reference: claim.reference,
                    digest: claim.digest,
                    key: fingerprint,
                });
            }
            Ok(claim) => other = Some(claim.digest),
            Err(_) => {}
        }
    }
    Err(match other {
        Some(other) => Refusal::OtherDigest {
            digest: digest.into(),
            key: fingerprint,
            other,
        },
        None => Refusal::OtherKey {
            digest: digest.into(),
            key: fingerprint,
            count: signatures.len(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::sigstore::attachment::layer;
    use crate::sigstore::key::PrivateKey;
    use crate::sigstore::key::tests::pkcs8;

    fn signed(k: &PrivateKey, digest: &str) -> (Descriptor, Vec<u8>) {
        let p = payload::make("r.example.com/flows/etl", digest);
        (layer(&p, &k.sign(&p)), p)
    }

    #[test]
    fn a_signature_holds_for_its_key_and_digest_only() {
        let k = PrivateKey::from_pem(&Secret::new(pkcs8()), None).unwrap();
        let other = PrivateKey::from_pem(
            &Secret::new(
                p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(
                    &p256::SecretKey::from_slice(&[0x24; 32]).unwrap(),
                    p256::pkcs8::LineEnding::LF,
                )
                .unwrap()
                .to_string(),
            ),
            None,
        )
        .unwrap();
        let good = signed(&k, "sha256:aa");
        let v = check(std::slice::from_ref(&good), "sha256:aa", &k.public()).unwrap();
        assert_eq!(v.reference, "r.example.com/flows/etl");
        assert_eq!(
            check(&[], "sha256:aa", &k.public()),
            Err(Refusal::Unsigned {
                digest: "sha256:aa".into()
            })
        );
        assert!(matches!(
            check(&[signed(&other, "sha256:aa")], "sha256:aa", &k.public()),
            Err(Refusal::OtherKey { count: 1, .. })
        ));
        assert!(matches!(
            check(&[signed(&k, "sha256:bb")], "sha256:aa", &k.public()),
            Err(Refusal::OtherDigest { .. })
        ));
        // Another signer's signature next to ours does not matter.
        assert!(
            check(
                &[signed(&other, "sha256:aa"), good.clone()],
                "sha256:aa",
                &k.public()
            )
            .is_ok()
        );
        // A payload swapped under the descriptor is not the signed one.
        let (d, _) = good;
        assert!(check(&[(d, b"{}".to_vec())], "sha256:aa", &k.public()).is_err());
    }
}
