//! OCI images as files and bytes: manifests, configs, layouts, reproducible layers. Must not talk
//! to a registry (that is `registry`).

pub mod archive;
pub mod artifact;
pub mod base;
pub mod build;
pub mod cache;
pub mod context;
pub mod deps;
pub mod elf;
mod failures;
pub mod inputs;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod own;
pub mod project;
pub mod provenance;
pub mod pysbom;
pub mod sdists;
pub mod sources;
pub mod time;
pub mod wheels;
