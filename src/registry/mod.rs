//! The OCI distribution protocol: references, credentials, authentication (Basic and the Bearer token flow
//! Harbor and Docker Hub use), and registry operations. Harbor's own REST API joins this module with image
//! pushes. Must not know about image layouts or layers (that is `image`).

mod auth;
pub mod blobs;
pub mod digest;
mod error;
pub mod harbor;
mod manifests;
pub mod probe;
pub mod push;
mod reference;
pub mod referrers;
pub mod repo;
pub mod session;

pub use error::RegistryError;
pub use session::{PushCheck, Session};

/// Credentials for one registry host, with where they were found.
#[derive(Debug, Clone)]
pub struct Credential {
    pub username: crate::source::Sourced<String>,
    pub password: crate::source::Sourced<crate::secret::Secret>,
}
pub use reference::{Reference, is_digest, is_tag};
