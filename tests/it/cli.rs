use crate::harness::flowship;

#[test]
fn version_names_the_commit() {
    let o = flowship().args(["--version"]).run();
    o.success();
    let line = o.stdout.trim();
    assert!(line.starts_with("flowship 0."), "{line}");
    assert!(
        line.contains('(') && line.ends_with(')'),
        "version lacks the commit: {line}"
    );
}

#[test]
fn help_documents_exit_codes() {
    flowship()
        .args(["--help"])
        .run()
        .success()
        .stdout_has("Exit codes: 0 success");
}

#[test]
fn bad_usage_exits_2() {
    flowship().args(["doctor", "--no-such-flag"]).run().code(2);
    flowship().args(["no-such-command"]).run().code(2);
}

#[test]
fn bad_output_format_exits_2() {
    flowship()
        .args(["settings", "--output", "yaml"])
        .run()
        .code(2);
}

/// A reader that goes away (`flowship settings | head -1`) is a clean exit, not an error.
#[test]
fn a_closed_stdout_is_a_clean_exit() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowship"))
        .args(["settings"])
        .env_clear()
        .env("FLOWSHIP_IMAGE", "h.example.com/f/x")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Under `--output json` an error is stdout's one JSON document too (kind, message, causes, hint, exit code),
/// also when the settings themselves cannot be read; the human message stays on stderr.
#[test]
fn errors_are_json_under_output_json() {
    let o = flowship()
        .args(["bump", "--output", "json", "--tag", "1"])
        .run();
    o.code(2)
        .stderr_has("error: bump needs the image repository");
    let doc = o.json();
    assert_eq!(doc["error"]["kind"], "usage", "{o}");
    assert_eq!(doc["error"]["exit_code"], 2, "{o}");
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("--image"),
        "{o}"
    );
    let f = flowship().env("FLOWSHIP_OUTPUT", "json");
    let config = f.file("flowship.yaml", "imagee: {}\n");
    let o = f
        .args(["settings", "--config", config.to_str().unwrap()])
        .run();
    o.code(2);
    assert_eq!(o.json()["error"]["kind"], "config", "{o}");
}
