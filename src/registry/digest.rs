//! `sha256:<hex>` digests.

use sha2::{Digest, Sha256};

pub fn of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
