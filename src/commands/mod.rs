//! One file per subcommand. Each receives the resolved `Settings` and the `Printer`, and returns an
//! `Error` that carries its exit code.

mod build;
mod bump;
mod doctor;
mod promote;
mod push;
mod register;
mod settings;

use crate::cli::Command;
use crate::error::Error;
use crate::output::Printer;
use crate::settings::Settings;

pub async fn run(command: &Command, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    match command {
        Command::Doctor(_) => doctor::run(settings, printer).await,
        Command::Settings(_) => settings::run(settings, printer),
        Command::Bump(args) => bump::run(args, settings, printer).await,
        Command::Register(args) => register::run(args, settings, printer).await,
        Command::Push(args) => push::run(args, settings, printer).await,
        Command::Build(args) => build::run(args, settings, printer).await,
        Command::Promote(args) => promote::run(args, settings, printer).await,
    }
}
