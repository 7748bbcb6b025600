//! Operations: each capability as `plan` (reads only; what it would do) and `apply` (does it, and returns a
//! typed outcome). Commands are thin: they resolve a request from the settings, plan, apply unless it is a
//! dry run, and hand the plan or outcome to `report`. `release` composes the same operations. Every operation
//! of a run shares one [`context::Context`] (the GitOps clones, the other environments' settings).

pub use context::Context;

pub mod bump;
pub mod context;
pub mod hold;
pub mod image;
pub mod pins;
pub mod promote;
pub mod pull_proof;
pub mod rebuild;
pub mod record;
pub mod register;
pub mod release;
pub mod rollback;
pub mod smoke;
pub mod status;
pub mod verify;
