//! Signing and verifying keys, read from PEM as cosign and openssl write them: the private key as PKCS#8
//! (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), or cosign's own encrypted form (`ENCRYPTED SIGSTORE PRIVATE KEY`,
//! formerly `ENCRYPTED COSIGN PRIVATE KEY`: scrypt + NaCl secretbox over the PKCS#8 bytes); the public key as
//! SPKI (`PUBLIC KEY`). ECDSA P-256 only, which is what `cosign generate-key-pair` makes.
//!
//! Errors never quote the key: its bytes are a secret wherever they came from.

use crate::secret::Secret;
use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use serde::Deserialize;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not a PEM private key (no `-----BEGIN ... PRIVATE KEY-----` block)")]
    NotPem,
    #[error("is a `{0}` PEM block, not an ECDSA P-256 private key")]
    Kind(String),
    #[error("does not read as an ECDSA P-256 {0} key")]
    Malformed(&'static str),
    #[error("is encrypted (cosign's format) and no password was given")]
    NoPassword,
    #[error("could not be decrypted: the password is wrong")]
    WrongPassword,
    #[error("is encrypted with {0}, which flowship does not read")]
    Cipher(String),
    #[error("is not a PEM public key (`-----BEGIN PUBLIC KEY-----`)")]
    NotPublic,
}

impl KeyError {
    pub fn hint(&self) -> &'static str {
        match self {
            KeyError::NoPassword | KeyError::WrongPassword => {
                "give the key's password in FLOWSHIP_SIGN_PASSWORD (or COSIGN_PASSWORD), as a masked variable"
            }
            KeyError::NotPublic => {
                "give the public key cosign wrote (cosign.pub), or `openssl ec -in KEY -pubout`"
            }
            _ => {
                "give an ECDSA P-256 key: `cosign generate-key-pair`, or `openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt`"
            }
        }
    }
}

/// A private key that signs. Its `Debug` says nothing about it.
pub struct PrivateKey(SigningKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A public key that verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// The first PEM block of `text`: its label and its base64 body, decoded.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    // Headers (`Proc-Type:`) are not cosign's nor PKCS#8's; a body line with `:` in it is not base64.
    let body: String = rest[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.trim().chars())
        .collect();
    Some((label.to_string(), B64.decode(body).ok()?))
}

/// cosign's encrypted private key: a JSON document in the PEM body.
#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn decrypt(body: &[u8], password: Option<&Secret>) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let doc: Encrypted =
        serde_json::from_slice(body).map_err(|_| KeyError::Malformed("encrypted private"))?;
    if doc.kdf.name != "scrypt" {
        return Err(KeyError::Cipher(doc.kdf.name));
    }
    if doc.cipher.name != "nacl/secretbox" {
        return Err(KeyError::Cipher(doc.cipher.name));
    }
    let bad = || KeyError::Malformed("encrypted private");
    let salt = B64.decode(&doc.kdf.salt).map_err(|_| bad())?;
    let nonce = B64.decode(&doc.cipher.nonce).map_err(|_| bad())?;
    let sealed = B64.decode(&doc.ciphertext).map_err(|_| bad())?;
    if !doc.kdf.params.n.is_power_of_two() || nonce.len() != 24 {
        return Err(bad());
    }
    let log_n = doc.kdf.params.n.trailing_zeros() as u8;
    let params =
        scrypt::Params::new(log_n, doc.kdf.params.r, doc.kdf.params.p, 32).map_err(|_| bad())?;
    // cosign accepts an empty password (COSIGN_PASSWORD set to nothing), which a variable cannot tell apart
    // from none: no password tries the empty one.
    let given = password.map_or("", |p| p.expose());
    let mut key = [0u8; 32];
    scrypt::scrypt(given.as_bytes(), &salt, &params, &mut key).map_err(|_| bad())?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), sealed.as_ref())
        .map_err(|_| match password {
            Some(_) => KeyError::WrongPassword,
            None => KeyError::NoPassword,
        })
}

impl PrivateKey {
    /// The key in `pem`, decrypted with `password` when it is cosign's encrypted form.
    pub fn from_pem(pem: &Secret, password: Option<&Secret>) -> Result<Self, KeyError> {
        let (label, der) = pem_block(pem.expose()).ok_or(KeyError::NotPem)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => {
                SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::Malformed("private"))?
            }
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|_| KeyError::Malformed("private"))?,
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let plain = decrypt(&der, password)?;
                SigningKey::from_pkcs8_der(&plain).map_err(|_| KeyError::Malformed("private"))?
            }
            other => return Err(KeyError::Kind(other.to_string())),
        };
        Ok(Self(key))
    }

    /// The ASN.1 DER ECDSA signature of SHA-256(`payload`): what cosign puts in its signature annotation.
    /// Deterministic (RFC 6979): the same payload gives the same signature.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let sig: DerSignature = self.0.sign(payload);
        sig.as_bytes().to_vec()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_block(pem).ok_or(KeyError::NotPublic)?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::NotPublic);
        }
        VerifyingKey::from_public_key_der(&der)
            .map(Self)
            .map_err(|_| KeyError::Malformed("public"))
    }

    /// Does `signature` (DER, or the fixed 64-byte form) sign `payload` under this key?
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        if let Ok(s) = p256::ecdsa::DerSignature::from_bytes(signature) {
            return self.0.verify(payload, &s).is_ok();
        }
        p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|s| self.0.verify(payload, &s).is_ok())
    }

    /// The key as `PUBLIC KEY` PEM (what `cosign generate-key-pair` writes as cosign.pub).
    #[cfg(test)]
    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap_or_default()
    }

    /// A short name for messages: the first 16 hex digits of SHA-256 of the key's DER.
    pub fn fingerprint(&self) -> String {
        let der = self
            .0
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        crate::registry::digest::of(&der)["sha256:".len()..][..16].to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway key made from fixed bytes, as PKCS#8 PEM (no key file is committed).
    pub fn pkcs8() -> String {
        use p256::pkcs8::EncodePrivateKey;
        let k = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
        k.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_pkcs8_key_signs_and_its_public_key_verifies() {
        let k = PrivateKey::from_pem(&Secret::new(pkcs8()), None).unwrap();
        let sig = k.sign(b"payload");
        assert_eq!(sig, k.sign(b"payload"), "RFC 6979: deterministic");
        let public = PublicKey::from_pem(&k.public().to_pem()).unwrap();
        assert!(public.verifies(b"payload", &sig));
        assert!(!public.verifies(b"payload2", &sig));
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn what_is_not_a_p256_private_key_is_named() {
        let e = |s: &str| PrivateKey::from_pem(&Secret::new(s), None).unwrap_err();
        assert_eq!(e("hello"), KeyError::NotPem);
        assert_eq!(
            e("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
            KeyError::Kind("RSA PRIVATE KEY".into())
        );
        assert_eq!(
            e("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            KeyError::Malformed("private")
        );
        assert!(PublicKey::from_pem(&pkcs8()).is_err());
        // openssl's default (`ecparam -genkey`) is SEC1: read as well, the same key.
        let sec1 = p256::SecretKey::from_slice(&[0x42; 32])
            .unwrap()
            .to_sec1_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        let from_sec1 = PrivateKey::from_pem(&Secret::new(sec1), None).unwrap();
        let from_pkcs8 = PrivateKey::from_pem(&Secret::new(pkcs8()), None).unwrap();
        assert_eq!(from_sec1.public(), from_pkcs8.public());
    }

    /// cosign's encrypted form, made the way cosign makes it (scrypt, then secretbox over the PKCS#8 DER).
    pub fn encrypted(password: &str) -> String {
        use crypto_secretbox::aead::{Aead, KeyInit};
        let (_, der) = pem_block(&pkcs8()).unwrap();
        let (salt, nonce) = ([7u8; 32], [9u8; 24]);
        let mut key = [0u8; 32];
        // N = 2^10 keeps the test fast; cosign writes 2^15 or 2^16, which reads the same way.
        let params = scrypt::Params::new(10, 8, 1, 32).unwrap();
        scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).unwrap();
        let sealed = crypto_secretbox::XSalsa20Poly1305::new(&key.into())
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der.as_ref())
            .unwrap();
        let doc = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": B64.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": B64.encode(nonce)},
            "ciphertext": B64.encode(sealed),
        });
        let body = B64.encode(serde_json::to_vec(&doc).unwrap());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn cosigns_encrypted_key_opens_with_its_password_only() {
        let pem = Secret::new(encrypted("hunter2"));
        let plain = PrivateKey::from_pem(&Secret::new(pkcs8()), None).unwrap();
        let k = PrivateKey::from_pem(&pem, Some(&Secret::new("hunter2"))).unwrap();
        assert_eq!(k.public(), plain.public());
        assert_eq!(
            PrivateKey::from_pem(&pem, Some(&Secret::new("wrong"))).unwrap_err(),
            KeyError::WrongPassword
        );
        assert_eq!(
            PrivateKey::from_pem(&pem, None).unwrap_err(),
            KeyError::NoPassword
        );
        let old = Secret::new(pem.expose().replace("SIGSTORE", "COSIGN"));
        assert!(PrivateKey::from_pem(&old, Some(&Secret::new("hunter2"))).is_ok());
    }
}
