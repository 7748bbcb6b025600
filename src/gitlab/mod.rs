//! GitLab CI: the job environment's conventions (collapsible log sections) and its dotenv artifact format.
//! `api` is the REST client (merge requests).

pub mod api;
pub mod dotenv;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// A collapsible section in a GitLab job log. Written to stderr (narration); the end marker is written when
/// the guard drops, so a section is closed on every exit path, errors included.
pub struct Section {
    name: String,
    enabled: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Section {
    /// `name`: letters, digits, `_ . -` (GitLab ignores anything else); `collapsed` hides the body by default.
    pub fn start(enabled: bool, name: &str, header: &str, collapsed: bool) -> Self {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if enabled {
            let opts = if collapsed { "[collapsed=true]" } else { "" };
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\x1b[0Ksection_start:{}:{name}{opts}\r\x1b[0K{header}\n",
                now()
            );
        }
        Self { name, enabled }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\x1b[0Ksection_end:{}:{}\r\x1b[0K\n", now(), self.name);
        }
    }
}

/// The GitLab job this run belongs to, for commit messages and trailers. Empty outside CI.
#[derive(Debug, Default, Clone)]
pub struct CiContext {
    pub pipeline_url: Option<String>,
    pub job_url: Option<String>,
    pub commit_sha: Option<String>,
    pub ref_name: Option<String>,
    pub project_url: Option<String>,
    pub project_name: Option<String>,
    pub short_sha: Option<String>,
    pub user_login: Option<String>,
}

/// GitLab's push options that open a merge request from the pushed branch into `target` (no API token
/// needed): <https://docs.gitlab.com/user/project/push_options/>.
pub fn merge_request_push_options(target: &str, title: &str) -> Vec<String> {
    vec![
        "merge_request.create".into(),
        format!("merge_request.target={target}"),
        format!("merge_request.title={title}"),
        "merge_request.remove_source_branch".into(),
    ]
}
