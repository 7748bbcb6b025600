//! A small fluent helper that starts flowship like a user would: a clean environment (nothing leaks in from
//! the developer's shell or this machine's CA variables), a throwaway HOME and working directory, and every
//! output checked for the sentinel secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set as the value of secrets in tests. It must never appear in any output.
pub const SENTINEL: &str = "SENTINEL-c0ffee-7f3a";

/// The services `ci/services start` exported. Missing means the tests were started without them.
pub fn svc(name: &str) -> String {
    let var = format!("FLOWSHIP_IT_{name}");
    std::env::var(&var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through ci/test, or `. .services/env` after `ci/services start`")
    })
}

pub struct Flowship {
    args: Vec<String>,
    /// Besides the sentinel, values that must not appear in any output (a real token a test has to use).
    secrets: Vec<String>,
    env: BTreeMap<String, String>,
    dir: tempfile::TempDir,
    cwd: Option<PathBuf>,
    /// Another flowship binary than the one under test (the static release build).
    binary: Option<PathBuf>,
}

/// `host:port` of a service URL (`http://127.0.0.1:4200/api` → `127.0.0.1:4200`).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The harness's services that speak plain HTTP (or `git://`), listed explicitly: flowship refuses
/// unencrypted transport to any host not named by `--plain-http` / `FLOWSHIP_PLAIN_HTTP`.
pub fn plain_services() -> Vec<String> {
    [
        "PREFECT_PLAIN",
        "PREFECT_AUTH",
        "PREFECT_PG",
        "GIT_DAEMON",
        "GIT_HTTP",
        "GITLAB_API",
        "HARBOR",
        "TOKEN_SERVICE",
    ]
    .iter()
    .filter_map(|n| std::env::var(format!("FLOWSHIP_IT_{n}")).ok())
    .map(|u| host_of(&u))
    .collect()
}

pub fn flowship() -> Flowship {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = BTreeMap::new();
    env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    env.insert("HOME".into(), dir.path().join("home").display().to_string());
    env.insert("FLOWSHIP_PLAIN_HTTP".into(), plain_services().join(","));
    // Base images' indexes are keyed by their layers' digests: one cache for every run reads each base once.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flowship-cache");
    env.insert("FLOWSHIP_CACHE_DIR".into(), cache.display().to_string());
    Flowship {
        args: Vec::new(),
        secrets: Vec::new(),
        env,
        dir,
        cwd: None,
        binary: None,
    }
}

impl Flowship {
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Set a variable. `FLOWSHIP_PLAIN_HTTP` adds to the harness's plain services (see [`plain_services`]).
    pub fn env(mut self, k: &str, v: impl AsRef<str>) -> Self {
        let v = v.as_ref().to_string();
        match self.env.get(k) {
            Some(old) if k == "FLOWSHIP_PLAIN_HTTP" && !old.is_empty() => {
                let joined = format!("{old},{v}");
                self.env.insert(k.into(), joined);
            }
            _ => {
                self.env.insert(k.into(), v);
            }
        }
        self
    }

    /// `flowship build` of `context` onto `base` into `repo:1.0`, with JSON on stdout: the invocation most
    /// build tests share (more flags with `args`).
    pub fn build_onto(self, repo: &str, base: &str, context: &Path) -> Self {
        let context = context.to_str().expect("a UTF-8 path");
        self.args(["build", "--image", repo, "--tag", "1.0", "--base", base])
            .args(["--context", context, "--output", "json"])
    }

    /// `value` must appear in no output of this run, like the sentinel.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.secrets.push(value.into());
        self
    }

    /// Without the harness's plain-HTTP list: for tests of the refusal itself.
    pub fn without_plain_http(mut self) -> Self {
        self.env.remove("FLOWSHIP_PLAIN_HTTP");
        self
    }

    /// A file in this run's scratch directory; returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Run in `dir`.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Run in the scratch directory (where a `flowship.yaml` written with `file` is picked up).
    pub fn in_scratch_dir(mut self) -> Self {
        self.cwd = Some(self.dir.path().to_path_buf());
        self
    }

    /// Run the static release binary `ci/test` built (`FLOWSHIP_IT_STATIC_BIN`): the one flowship's own
    /// image is made of.
    pub fn static_binary(mut self) -> Self {
        self.binary = Some(PathBuf::from(svc("STATIC_BIN")));
        self
    }

    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(self) -> Outcome {
        let bin = self
            .binary
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flowship")));
        let mut cmd = Command::new(bin);
        cmd.args(&self.args).env_clear().envs(&self.env);
        cmd.current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()));
        let out = cmd.output().expect("flowship runs");
        let o = Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            cmdline: format!("flowship {}", self.args.join(" ")),
        };
        for s in std::iter::once(SENTINEL).chain(self.secrets.iter().map(String::as_str)) {
            assert!(
                !o.stdout.contains(s) && !o.stderr.contains(s),
                "the secret {s:?} leaked into the output of `{}`:\n{o}",
                o.cmdline
            );
        }
        o
    }
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    cmdline: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(self.code, want, "{self}");
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let doc = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{self}"));
        check_schema(&self.stdout, &self.cmdline);
        if let Ok(log) = std::env::var("FLOWSHIP_IT_JSON_LOG") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            writeln!(
                f,
                "{}\t{}",
                self.cmdline,
                serde_json::to_string(&doc).unwrap()
            )
            .unwrap();
        }
        doc
    }
}

/// Requests the git smart-HTTP server (nginx) received for a repository path, as `(user, status)`: what a
/// client really sent, for asserting how often credentials were tried.
pub fn git_http_requests(repo: &str) -> Vec<(String, u16)> {
    let log = std::fs::read_to_string(format!("{}/logs/nginx-access.log", svc("SERVICES")))
        .unwrap_or_default();
    log.lines()
        .filter(|l| l.contains(&format!("/git/{repo}/")))
        .filter_map(|l| {
            let user = l.split_whitespace().nth(2)?.to_string();
            let status = l
                .split('"')
                .nth(2)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((user, status))
        })
        .collect()
}

/// The last JSON document of a curl run's output: with `--retry`, curl writes the bodies of the attempts that
/// failed (a busy 503) before the one that counts.
pub fn last_json(out: &[u8]) -> serde_json::Value {
    serde_json::Deserializer::from_slice(out)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .last()
        .unwrap_or(serde_json::Value::Null)
}

/// A fresh bare repository served by every git server, seeded with `files`. Returns (name, bare path).
pub fn seeded(files: &[(&str, String)]) -> (String, PathBuf) {
    let name = format!("it-{}-{}.git", std::process::id(), fastrand::u64(..));
    let bare = Path::new(&svc("GIT_ROOT")).join(&name);
    git(
        Path::new("."),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "-b", "main"]);
    for (f, content) in files {
        let p = work.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(work.path(), &["add", "-A"]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=seed",
            "-c",
            "user.email=seed@example.invalid",
            "commit",
            "-q",
            "-m",
            "seed",
        ],
    );
    git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    (name, bare)
}

/// `curl -s --retry 10 args…`, its stdout; a curl that fails (no answer, a refused connection) fails the test,
/// so that a check of what a server holds never passes because the server was not asked. HTTP errors are
/// answers (curl exits 0): the caller reads them.
pub fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--retry", "10"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `git -C dir args…`, its stdout trimmed; a failing git fails the test (a check that reads nothing proves
/// nothing).
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every JSON document a test reads is checked against the published schema (`schema/output.schema.json`),
/// with the `jsonschema` package of the Prefect venv `ci/test` installs (Prefect depends on it): an output that
/// changes shape without the schema fails here.
#[track_caller]
fn check_schema(doc: &str, cmdline: &str) {
    let Ok(prefect) = std::env::var("FLOWSHIP_IT_PREFECT_BIN") else {
        return;
    };
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/output.schema.json");
    let python = Path::new(&prefect).with_file_name("python");
    let script = "import json,sys,jsonschema\n\
        v=jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n\
        errs=sorted(v.iter_errors(json.load(sys.stdin)),key=lambda e:len(list(e.path)))\n\
        [print(e.json_path,e.message[:400]) for e in errs[:5]]\n\
        sys.exit(1 if errs else 0)\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the Prefect venv's python runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), doc.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the output of `{cmdline}` does not follow schema/output.schema.json:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
