//! The GitOps repository: talking to the git remote (credentials, trust, connectivity). Byte-exact manifest
//! edits and the commit/push loop join this module with `bump`. Must not know about registries or Prefect.

pub mod clones;
pub mod commit;
pub mod images;
pub mod order;
pub mod probe;
pub mod remote;
pub mod repo;
pub mod yaml;
