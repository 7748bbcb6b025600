//! The "simple signing" payload cosign signs for an image: which manifest digest, under which repository.
//! Its exact shape matters: containers/image refuses a payload with any other field in `critical`, and
//! cosign writes `"optional": null` when there are no annotations.

use serde_json::{Value, json};

pub const TYPE: &str = "cosign container image signature";

/// What a payload says: the image's digest, and the repository it was signed for (`docker-reference`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub reference: String,
    pub digest: String,
}

/// The payload for `digest` in `reference` (`registry/repository`, no tag), as cosign writes it.
pub fn make(reference: &str, digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).expect("JSON")
}

/// The claim of a payload, or why it is not a cosign image signature payload.
pub fn read(bytes: &[u8]) -> Result<Claim, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let critical = &v["critical"];
    if critical["type"] != TYPE {
        return Err(format!("its type is {}, not `{TYPE}`", critical["type"]));
    }
    let digest = critical["image"]["docker-manifest-digest"]
        .as_str()
        .ok_or("it names no docker-manifest-digest")?;
    let reference = critical["identity"]["docker-reference"]
        .as_str()
        .ok_or("it names no docker-reference")?;
    Ok(Claim {
        reference: reference.into(),
        digest: digest.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cosigns_byte_for_byte() {
        let p = make("registry.example.com/flows/etl", "sha256:abc");
        assert_eq!(
            String::from_utf8(p.clone()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"registry.example.com/flows/etl"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}"#
        );
        assert_eq!(
            read(&p).unwrap(),
            Claim {
                reference: "registry.example.com/flows/etl".into(),
                digest: "sha256:abc".into()
            }
        );
    }

    #[test]
    fn other_payloads_are_named() {
        assert!(read(b"nope").unwrap_err().contains("not JSON"));
        assert!(
            read(br#"{"critical":{"type":"x"}}"#)
                .unwrap_err()
                .contains("type")
        );
        assert!(
            read(br#"{"critical":{"type":"cosign container image signature","image":{}}}"#)
                .unwrap_err()
                .contains("digest")
        );
    }
}
