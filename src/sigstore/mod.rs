//! Sigstore's and cosign's formats, so that what flowship signs is what cosign, podman and
//! containers/image (`use-sigstore-attachments`), Argo CD Image Updater and Harbor already check: keys
//! ([`key`]), the "simple signing" payload ([`payload`]), and the signature manifest under the
//! `sha256-<hex>.sig` tag ([`attachment`]). Bytes in, bytes out: must not talk to a registry (that is
//! `registry`) nor decide what to sign (that is `ops`).

pub mod attachment;
pub mod dsse;
pub mod key;
pub mod payload;
pub mod verify;

pub use key::{KeyError, PrivateKey, PublicKey};
