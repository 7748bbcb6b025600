//! `flowship settings`: every resolved value and where it came from. Secrets show as `<redacted>`.

use crate::error::Error;
use crate::output::Printer;
use crate::settings::Settings;

pub fn run(settings: &Settings, printer: &Printer) -> Result<(), Error> {
    crate::report::settings(&settings.entries(), printer)
}
