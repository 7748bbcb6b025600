//! OCI images as files and bytes: digests, manifests, configs, layouts, reproducible layers. Must not talk
//! to a registry (that is `registry`).

pub mod digest;
pub mod layout;
pub mod manifest;
