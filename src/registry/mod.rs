//! The OCI distribution protocol: references, credentials, authentication (Basic and the Bearer token flow
//! Harbor and Docker Hub use), and registry operations. Harbor's own REST API joins this module with image
//! pushes. Must not know about image layouts or layers (that is `image`).

mod auth;
pub mod blobs;
mod client;
pub mod credentials;
pub mod harbor;
pub mod push;
mod reference;
pub mod session;

pub use client::{PushCheck, Registry, RegistryError};
pub use credentials::Credential;
pub use reference::{Reference, ReferenceError, is_digest, is_tag};
