//! One file per subcommand. Each receives the resolved `Settings` and the `Printer`, and returns an
//! `Error` that carries its exit code.

mod build;
mod bump;
mod doctor;
mod promote;
mod push;
mod register;
mod release;
mod rollback;
mod settings;
mod status;
mod verify;

use crate::cli::Command;
use crate::error::Error;
use crate::ops::Context;

pub async fn run(command: &Command, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    match command {
        Command::Doctor(_) => doctor::run(settings, printer).await,
        Command::Settings(_) => settings::run(settings, printer),
        Command::Bump(args) => bump::run(args, ctx).await,
        Command::Register(args) => register::run(args, ctx).await,
        Command::Push(args) => push::run(args, ctx).await,
        Command::Build(args) => build::run(args, ctx).await,
        Command::Promote(args) => promote::run(args, ctx).await,
        Command::Release(args) => release::run(args, ctx).await,
        Command::Status(_) => status::run(ctx).await,
        Command::Rollback(args) => rollback::run(args, ctx).await,
        Command::Verify(args) => verify::run(args, ctx).await,
    }
}

/// A release request from the flags every releasing command shares; each command fills in the rest.
fn release_request(
    bump: &crate::cli::BumpFlags,
    register: &crate::cli::RegisterFlags,
) -> crate::ops::release::Request {
    crate::ops::release::Request {
        tags: Vec::new(),
        mr_branch: bump.mr_branch.clone(),
        push_options: bump.push_options.clone(),
        skip_steps: register.skip_steps.clone(),
        lift_hold: false,
        saved: None,
        image: None,
        hold: None,
        subject: None,
        record: None,
    }
}
