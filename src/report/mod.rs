//! The one reporter: every operation's plan or outcome rendered as human text (data on stdout, narration on
//! stderr), as one JSON document (`--output json`), and as the GitLab dotenv report (`--dotenv`). Operations
//! never print their results; commands hand them here. One renderer per command, in its own file.

mod bump;
pub(crate) mod doctor;
mod image;
mod register;
mod release;
mod settings;
mod status;
mod verify;

pub(crate) use bump::{bump, bump_plan};
pub(crate) use doctor::doctor;
pub(crate) use image::{image, image_plan};
pub(crate) use register::register;
pub(crate) use release::{release, release_plan};
pub(crate) use settings::settings;
pub(crate) use status::status;
pub(crate) use verify::verify;

use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::settings::Settings;

/// Write the dotenv report (when asked for) with these variables; never in a dry run.
pub fn dotenv(settings: &Settings, vars: &[(&str, String)]) -> Result<(), Error> {
    let Some(path) = &settings.dotenv else {
        return Ok(());
    };
    if settings.dry_run.value || vars.is_empty() {
        return Ok(());
    }
    let mut d = Dotenv::default();
    for (k, v) in vars {
        d.set(k, v);
    }
    d.write(&path.value, &settings.secret_values())
        .map_err(|reason| Error::Output {
            what: path.value.display().to_string(),
            reason,
        })
}
