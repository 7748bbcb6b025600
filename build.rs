//! Records the git commit the binary was built from, for `flowship --version`.
use std::process::Command;

fn main() {
    let commit = std::env::var("FLOWSHIP_BUILD_COMMIT")
        .ok()
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FLOWSHIP_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=FLOWSHIP_BUILD_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
