//! flowship: build, push, bump and register Prefect flow images from GitLab CI.
//!
//! Modules are named after the outside system they own: `registry` (OCI distribution, Harbor), `gitops`
//! (the GitOps git repository), `prefect` (Prefect's REST API), `gitlab` (CI conventions, dotenv), `http`
//! (clients, trust, retries). `cli` parses, `settings` resolves once, `commands` act, `output` prints.

pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod error;
pub(crate) mod gitlab;
pub(crate) mod gitops;
pub(crate) mod http;
pub(crate) mod image;
pub(crate) mod ops;
pub(crate) mod output;
pub(crate) mod prefect;
pub(crate) mod probe;
pub(crate) mod registry;
pub(crate) mod report;
pub(crate) mod secret;
pub(crate) mod settings;
pub(crate) mod sigstore;
pub(crate) mod source;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// Parse, resolve, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches(); // exits 2 on bad usage, 0 on --help/--version
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let env = settings::Env::from_process();
    // flowship.yaml is read once; every environment's settings come from that one read.
    let resolved = settings::load(&matches, &env).and_then(|config| {
        settings::resolve(&cli, &matches, &env, &config, None).map(|s| (config, s))
    });
    let (config, settings) = match resolved {
        Ok(s) => s,
        Err(e) => {
            let err = error::Error::from(e);
            // The settings are what failed: the format comes from the flag or the variable directly.
            let json = cli.global.output == Some(cli::OutputFormat::Json)
                || (cli.global.output.is_none()
                    && std::env::var("FLOWSHIP_OUTPUT")
                        .is_ok_and(|v| v.eq_ignore_ascii_case("json")));
            let format = match json {
                true => cli::OutputFormat::Json,
                false => cli::OutputFormat::Human,
            };
            output::Printer::bare_as(format).error(&err);
            return ExitCode::from(err.exit_code());
        }
    };
    let printer = output::Printer::new(&settings);
    output::init_tracing(&settings, printer.scrubber());
    // One crypto provider for every rustls user in the process (reqwest is built without one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&error::Error::Local {
                what: "cannot start the async runtime".into(),
                reason: e.to_string(),
            });
            return ExitCode::from(1);
        }
    };
    // Another environment's settings (status across environments, promote between them); their secrets
    // join the scrubber as soon as they are resolved.
    let scrubber = printer.scrubber();
    let other = |name: &str| {
        let s = settings::resolve(&cli, &matches, &env, &config, Some(name))
            .map_err(error::Error::from)?;
        for v in s.secret_values() {
            scrubber.add(&v);
        }
        Ok(s)
    };
    let ctx = ops::Context::new(&settings, &printer, &other);
    match runtime.block_on(commands::run(&cli.command, &ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`flowship status | head -1`): what it wanted was written; a
        // clean exit, as ripgrep and other well-behaved tools do.
        Err(error::Error::Output { what, reason })
            if what == "stdout" && reason.contains("Broken pipe") =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
