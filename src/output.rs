//! The printer: stdout is data (a table, or one JSON document under `--output json`), stderr is narration
//! (progress, sections, warnings, errors). Colour only on a terminal, under GitLab CI, or when forced, never
//! under `NO_COLOR`. Every line written through here, tracing included, is scrubbed of the secret values in
//! effect: the `Secret` type keeps them out of formatting, this catches what reaches text some other way
//! (a server echoing a header back in an error body, say).

use crate::cli::OutputFormat;
use crate::error::Error;
use crate::gitlab::Section;
use crate::settings::Settings;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Scrubber {
    /// Shared by every clone: values learnt during the run (a Secret block's value, fetched by `register`)
    /// are scrubbed from everything written after that, tracing included.
    secrets: Arc<std::sync::RwLock<Vec<String>>>,
}

impl Scrubber {
    pub fn new(secrets: Vec<String>) -> Self {
        let s = Self::default();
        for v in secrets {
            s.add(&v);
        }
        s
    }

    /// Scrub `value` (and its JSON-escaped form) from all output from now on. Very short values would blank
    /// out ordinary words (GitLab refuses to mask under 8 characters): they are redacted where they are
    /// rendered instead.
    pub fn add(&self, value: &str) {
        if value.len() < 4 {
            return;
        }
        let mut forms = vec![value.to_string()];
        if let Ok(json) = serde_json::to_string(value) {
            let escaped = json[1..json.len() - 1].to_string();
            if escaped != value {
                forms.push(escaped);
            }
        }
        let mut all = self.secrets.write().expect("not poisoned");
        for f in forms {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        all.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.read().expect("not poisoned").iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }
}

pub struct Printer {
    format: OutputFormat,
    /// The run's one JSON document is written: an error after it (doctor's refusal, status's drift) is said
    /// on stderr only, so stdout stays one document.
    json_written: std::sync::atomic::AtomicBool,
    quiet: bool,
    /// stderr is a terminal: progress bars make sense.
    terminal: bool,
    color: bool,
    gitlab: bool,
    scrubber: Scrubber,
}

#[derive(Clone, Copy)]
pub enum Style {
    Ok,
    Fail,
    Warn,
    Dim,
    Bold,
}

impl Printer {
    pub fn new(settings: &Settings) -> Self {
        Self {
            format: settings.output.value,
            json_written: Default::default(),
            quiet: settings.verbosity < 0,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            color: settings.color,
            gitlab: settings.gitlab_ci,
            scrubber: Scrubber::new(settings.secret_values()),
        }
    }

    /// `bare` in the format the command line or `FLOWSHIP_OUTPUT` asked for (settings could not be read).
    pub fn bare_as(format: OutputFormat) -> Self {
        Self {
            format,
            json_written: Default::default(),
            quiet: false,
            terminal: false,
            color: false,
            gitlab: false,
            scrubber: Scrubber::default(),
        }
    }

    pub fn scrubber(&self) -> Scrubber {
        self.scrubber.clone()
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    pub fn paint(&self, text: &str, style: Style) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match style {
            Style::Ok => "32",
            Style::Fail => "31",
            Style::Warn => "33",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Progress bars, only for a person at a terminal: never in CI logs, under `-q`, or with JSON output.
    pub fn progress(&self) -> Option<indicatif::MultiProgress> {
        (self.terminal && !self.quiet && !self.gitlab && !self.is_json()).then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        })
    }

    /// Narration on stderr; silent under `-q`.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", self.scrubber.scrub(msg));
        }
    }

    pub fn warn(&self, msg: &str) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {}",
            self.paint("warning:", Style::Warn),
            self.scrubber.scrub(msg)
        );
    }

    pub fn error(&self, err: &Error) {
        // Under `--output json` the error is stdout's one document too, so a pipeline reading stdout always
        // gets JSON; unless the command's own report already was that document.
        if matches!(self.format, OutputFormat::Json)
            && !err.is_reported()
            && !self.json_written.load(std::sync::atomic::Ordering::Relaxed)
        {
            let _ = self.json(&err.to_json());
        }
        let text = self.scrubber.scrub(&err.render());
        let text = text
            .replacen("error:", &self.paint("error:", Style::Fail), 1)
            .replacen(
                "\nhint:",
                &format!("\n{}", self.paint("hint:", Style::Bold)),
                1,
            );
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    /// A GitLab collapsible section around a step's narration (a no-op outside GitLab CI).
    pub fn section(&self, name: &str, header: &str) -> Section {
        Section::start(self.gitlab && !self.quiet, name, header, false)
    }

    /// Human data on stdout.
    pub fn data(&self, text: &str) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        out.write_all(self.scrubber.scrub(text).as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::Output {
                what: "stdout".into(),
                reason: e.to_string(),
            })
    }

    /// The one JSON document of `--output json`, on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::Internal(format!("serialising output: {e}")))?;
        self.json_written
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.data(&format!("{text}\n"))
    }
}

/// A tracing writer that scrubs secrets from each line.
struct ScrubWriter(Scrubber);

impl Write for ScrubWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(self.0.scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `-v` debug, `-vv` trace, for flowship's own modules; `RUST_LOG` overrides both.
pub fn init_tracing(settings: &Settings, scrubber: Scrubber) {
    let default = match settings.verbosity {
        i8::MIN..=-1 => "error",
        0 => "warn",
        1 => "flowship=debug,warn",
        _ => "flowship=trace,info",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_new(settings.log_filter.as_deref().unwrap_or(default))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(settings.color)
        .with_target(false)
        .with_writer(move || ScrubWriter(scrubber.clone()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubber_removes_secrets_longest_first() {
        let s = Scrubber::new(vec![
            "abc".into(),
            "token-123".into(),
            "token-123456".into(),
        ]);
        assert_eq!(
            s.scrub("a token-123456 and token-123 and abc"),
            "a <redacted> and <redacted> and abc"
        );
    }
}
