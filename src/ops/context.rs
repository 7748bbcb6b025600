//! The run's context: what every operation of one run shares instead of building its own. The GitOps clones
//! (one fetch per remote and branch, however many steps and environments read it), the registry sessions (one
//! authenticated conversation per registry and account), the Prefect clients (one per server and identity,
//! with its CSRF token), and the settings of the file's other environments (resolved once each, on first
//! use), with the run's settings and printer. The HTTP client under all of them is one per trust configuration (`http`). Commands make one
//! context and hand it to the operations; an operation never opens what the context already holds.

use crate::error::Error;
use crate::gitops::clones::Clones;
use crate::prefect::Prefect;
use crate::registry::session::Session;
use crate::registry::{Credential, Reference};
use crate::settings::Settings;
use std::sync::{Arc, Mutex};

/// A registry session's identity: the host, and the account's name and password.
type Account = (String, Option<(String, String)>);
/// A Prefect client's identity: the API URL and its credentials.
type Server = (String, Option<String>);

/// Settings for another environment of the file, by name.
pub type Environments<'a> = dyn Fn(&str) -> Result<Settings, Error> + Sync + 'a;

pub struct Context<'a> {
    /// The run's settings (its selected environment's).
    pub settings: &'a Settings,
    pub printer: &'a crate::output::Printer,
    resolve: &'a Environments<'a>,
    environments: Mutex<Vec<(String, Arc<Settings>)>>,
    clones: Clones,
    sessions: tokio::sync::Mutex<Vec<(Account, Arc<Session>)>>,
    prefects: Mutex<Vec<(Server, Arc<Prefect>)>>,
}

impl<'a> Context<'a> {
    pub fn new(
        settings: &'a Settings,
        printer: &'a crate::output::Printer,
        resolve: &'a Environments<'a>,
    ) -> Self {
        Self {
            settings,
            printer,
            resolve,
            environments: Mutex::default(),
            clones: Clones::default(),
            sessions: tokio::sync::Mutex::default(),
            prefects: Mutex::default(),
        }
    }

    /// The settings of environment `name` (the selected one's overlay replaced by `name`'s), resolved once.
    pub fn environment(&self, name: &str) -> Result<Arc<Settings>, Error> {
        let cached = self
            .environments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone());
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = Arc::new((self.resolve)(name)?);
        self.environments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), s.clone()));
        Ok(s)
    }

    /// The run's GitOps clones.
    pub fn clones(&self) -> &Clones {
        &self.clones
    }

    /// The run's session with the registry of `image`, under the settings' credentials for that registry
    /// (opened on first use: one challenge, one token per scope, for every step of the run).
    pub async fn registry(
        &self,
        settings: &Settings,
        image: &Reference,
    ) -> Result<Arc<Session>, Error> {
        self.session(
            settings,
            image.api_host(),
            settings.credential(&image.registry),
        )
        .await
    }

    /// The run's session with `host` as `credential` (anonymous with `None`).
    pub async fn session(
        &self,
        settings: &Settings,
        host: &str,
        credential: Option<Credential>,
    ) -> Result<Arc<Session>, Error> {
        let key: Account = (
            host.to_string(),
            credential.as_ref().map(|c| {
                (
                    c.username.value.clone(),
                    c.password.value.expose().to_string(),
                )
            }),
        );
        // Held while a session opens: concurrent steps asking for the same registry wait for the one session.
        let mut sessions = self.sessions.lock().await;
        if let Some((_, s)) = sessions.iter().find(|(k, _)| *k == key) {
            return Ok(s.clone());
        }
        let http = crate::http::Http::new(&settings.http_config())?;
        let s = Arc::new(Session::open(http, host, credential).await?);
        sessions.push((key, s.clone()));
        Ok(s)
    }

    /// The run's client of the settings' Prefect server at `api_url` (with the settings' credentials for it).
    pub fn prefect(&self, settings: &Settings, api_url: &str) -> Result<Arc<Prefect>, Error> {
        let auth = settings.prefect_auth();
        let key: Server = (
            api_url.to_string(),
            auth.as_ref().map(|a| match a {
                crate::prefect::Auth::Basic(s) => format!("basic {}", s.expose()),
                crate::prefect::Auth::Bearer(s) => format!("bearer {}", s.expose()),
            }),
        );
        let mut prefects = self.prefects.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = prefects.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let c = Arc::new(Prefect::new(
            crate::http::Http::new(&settings.http_config())?,
            api_url,
            auth,
        ));
        prefects.push((key, c.clone()));
        Ok(c)
    }
}
