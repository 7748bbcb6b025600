//! DSSE envelopes, as cosign attests: an in-toto statement signed over DSSE's pre-authentication encoding
//! (`DSSEv1 <len> <type> <len> <body>`), kept as a layer of the `sha256-<hex>.att` manifest (see
//! [`super::attachment`]). `cosign verify-attestation --key` reads exactly this.

use super::key::{PrivateKey, PublicKey};
use base64::Engine;
use serde_json::{Value, json};

/// The layer media type of an attestation, and the envelope's payload type for in-toto statements.
pub const ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The envelope of `statement`, signed with `key`.
pub fn seal(statement: &[u8], key: &PrivateKey) -> Vec<u8> {
    let sig = key.sign(&pae(IN_TOTO, statement));
    serde_json::to_vec(&json!({
        "payloadType": IN_TOTO,
        "payload": B64.encode(statement),
        "signatures": [{"keyid": "", "sig": B64.encode(sig)}],
    }))
    .expect("JSON")
}

/// The statement in `envelope`, when one of its signatures verifies under `key`.
pub fn open(envelope: &[u8], key: &PublicKey) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(envelope).map_err(|e| format!("is not JSON: {e}"))?;
    if v["payloadType"] != IN_TOTO {
        return Err(format!(
            "holds {}, not an in-toto statement",
            v["payloadType"]
        ));
    }
    let statement = v["payload"]
        .as_str()
        .and_then(|p| B64.decode(p).ok())
        .ok_or("has no payload")?;
    let signed = pae(IN_TOTO, &statement);
    let holds = v["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sig"].as_str().and_then(|s| B64.decode(s).ok()))
        .any(|sig| key.verifies(&signed, &sig));
    match holds {
        true => Ok(statement),
        false => Err("is not signed with this key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::sigstore::key::tests::pkcs8;

    #[test]
    fn pae_is_dsses() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
        );
    }

    #[test]
    fn an_envelope_opens_with_its_key_only() {
        let k = PrivateKey::from_pem(&Secret::new(pkcs8()), None).unwrap();
        let env = seal(br#"{"_type":"x"}"#, &k);
        assert_eq!(open(&env, &k.public()).unwrap(), br#"{"_type":"x"}"#);
        let mut v: Value = serde_json::from_slice(&env).unwrap();
        v["payload"] = json!(B64.encode(br#"{"_type":"y"}"#));
        let forged = serde_json::to_vec(&v).unwrap();
        assert!(
            open(&forged, &k.public())
                .unwrap_err()
                .contains("not signed")
        );
    }
}
