//! The GitOps remote's health, for `doctor`: what can be checked without writing anything.

use super::remote::{Access, GitError};
use crate::probe::{Check, Status, check, fail, failed, skip_rest};
use git2::Direction;

/// The remote and `branch`: reachable, TLS, credentials accepted for reading, the branch exists, push
/// permission (the server grants receive-pack; nothing is pushed). Blocking (libgit2).
pub fn checks(access: &Access, branch: &str) -> Vec<Check> {
    let url = access.display_url();
    let mut checks = Vec::new();
    let later = ["credentials", "branch", "push", "version"];
    let refs = match access.list_refs(Direction::Fetch) {
        Ok(r) => r,
        Err(e) => {
            let (msg, hint) = (e.to_string(), e.hint());
            match e {
                GitError::Untrusted { .. } => {
                    checks.push(check("reachable", Status::Ok, "connected"));
                    checks.push(fail("tls", msg, hint));
                    skip_rest(&mut checks, &later, "TLS failed");
                }
                GitError::BadCredentials { .. } | GitError::NeedsCredentials { .. } => {
                    checks.push(check("reachable", Status::Ok, "connected"));
                    checks.push(tls_row(&url));
                    checks.push(fail("credentials", msg, hint));
                    skip_rest(&mut checks, &later[1..], "credentials not accepted");
                }
                _ => {
                    checks.push(fail("reachable", msg, hint));
                    skip_rest(
                        &mut checks,
                        &["tls", "credentials", "branch", "push", "version"],
                        "not reached",
                    );
                }
            }
            return checks;
        }
    };
    checks.push(check(
        "reachable",
        Status::Ok,
        format!("{} refs listed", refs.len()),
    ));
    checks.push(tls_row(&url));
    checks.push(check("credentials", Status::Ok, "accepted for reading"));
    let full = format!("refs/heads/{branch}");
    checks.push(if refs.contains(&full) {
        check("branch", Status::Ok, format!("`{branch}` exists"))
    } else {
        fail(
            "branch",
            format!("`{branch}` does not exist"),
            Some("set --gitops-branch or gitops.branch to an existing branch".into()),
        )
    });
    checks.push(match access.list_refs(Direction::Push) {
        Ok(_) => check("push", Status::Ok, "receive-pack granted (no push made)"),
        Err(e) => failed("push", &e, e.hint()),
    });
    checks.push(check(
        "version",
        Status::Skip,
        "the git protocol does not report one to libgit2",
    ));
    checks
}

fn tls_row(url: &str) -> Check {
    if url.starts_with("https://") {
        check("tls", Status::Ok, "certificate trusted")
    } else if url.starts_with("http://") {
        check(
            "tls",
            Status::Warn,
            "plain HTTP: credentials travel unencrypted",
        )
    } else {
        check("tls", Status::Skip, "not a TLS transport")
    }
}
