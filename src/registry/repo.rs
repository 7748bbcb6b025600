//! One repository of one registry, as a reader of images sees it: its manifests and blobs, and how a push
//! plan names a blob to copy from it. The image builder deals in repositories, never in sessions: tokens,
//! scopes and retries stay in `registry`.

use super::RegistryError;
use super::blobs::Source;
use super::session::Session;
use std::sync::Arc;

#[derive(Clone)]
pub struct Repo {
    session: Arc<Session>,
    name: String,
}

impl Repo {
    pub fn new(session: Arc<Session>, name: impl Into<String>) -> Self {
        Self {
            session,
            name: name.into(),
        }
    }

    /// The repository's name in its registry (`flows/etl`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Do both live in one registry (so that a blob is mounted, not copied)?
    pub fn same_registry(&self, other: &Repo) -> bool {
        self.session.host() == other.session.host()
    }

    /// `(bytes, media type served, digest)`, `None` when there is no such manifest.
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>, RegistryError> {
        self.session.manifest_get(&self.name, reference).await
    }

    /// A small blob (a config, a record), read whole, at most `limit` bytes.
    pub async fn blob_bytes(&self, digest: &str, limit: usize) -> Result<Vec<u8>, RegistryError> {
        self.session.blob_bytes(&self.name, digest, limit).await
    }

    /// A blob as a response to stream (a layer).
    pub async fn blob(&self, digest: &str) -> Result<reqwest::Response, RegistryError> {
        self.session.blob_get(&self.name, digest, None).await
    }

    /// Where a push plan copies a blob of this repository from.
    pub fn source(&self) -> Source {
        Source::Remote {
            session: self.session.clone(),
            repository: self.name.clone(),
        }
    }
}
