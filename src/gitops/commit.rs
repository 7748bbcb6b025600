//! What a bump writes besides the edits: the commit message (a template, then links and trailers) and the
//! unified diff a dry run shows.

use super::images::{Change, Target};
use crate::gitlab::CiContext;

pub fn new_ref(t: &Target) -> String {
    let mut s = t.repository.clone();
    if let Some(tag) = &t.tag {
        s.push_str(&format!(":{tag}"));
    }
    if let Some(d) = &t.digest {
        s.push_str(&format!("@{d}"));
    }
    s
}

pub const DEFAULT_MESSAGE: &str = "bump {image}\n\n{changes}";

/// The commit message: the template (`--message`, `gitops.commit_message`) with `{image}`, `{repository}`,
/// `{tag}`, `{digest}`, `{changes}` (one `file: path old -> new` line each), `{pipeline_url}` and `{job_url}`
/// filled in; then links to the pipeline and job, and trailers that tools can grep for.
pub fn commit_message(template: &str, t: &Target, ci: &CiContext, changes: &[Change]) -> String {
    let list: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: {} {} -> {}", c.file, c.path, c.old, c.new))
        .collect();
    let mut m = template
        .replace("{image}", &new_ref(t))
        .replace("{repository}", &t.repository)
        .replace("{tag}", t.tag.as_deref().unwrap_or(""))
        .replace("{digest}", t.digest.as_deref().unwrap_or(""))
        .replace("{changes}", &list.join("\n"))
        .replace("{pipeline_url}", ci.pipeline_url.as_deref().unwrap_or(""))
        .replace("{job_url}", ci.job_url.as_deref().unwrap_or(""));
    m = m.trim_end().to_string();
    m.push_str("\n\n");
    if !template.contains("{pipeline_url}")
        && let Some(u) = &ci.pipeline_url
    {
        m.push_str(&format!("Pipeline: {u}\n"));
    }
    if !template.contains("{job_url}")
        && let Some(u) = &ci.job_url
    {
        m.push_str(&format!("Job: {u}\n"));
    }
    m.push_str(&format!("\nFlowship-Image: {}\n", new_ref(t)));
    if let Some(sha) = &ci.commit_sha {
        m.push_str(&format!("Flowship-Source-Commit: {sha}\n"));
    }
    m.replace("\n\n\n", "\n\n")
}

/// A unified diff of the changed lines (one line of each side per change; edits never add or remove lines).
pub fn diff<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a [Change])>,
) -> String {
    let mut out = String::new();
    for (rel, old, new, changes) in files {
        out.push_str(&format!("--- a/{0}\n+++ b/{0}\n", rel));
        let old: Vec<&str> = old.split_inclusive('\n').collect();
        let new: Vec<&str> = new.split_inclusive('\n').collect();
        let mut lines: Vec<usize> = changes.iter().map(|c| c.line).collect();
        lines.dedup();
        for l in lines {
            let (o, n) = (
                old.get(l - 1).copied().unwrap_or(""),
                new.get(l - 1).copied().unwrap_or(""),
            );
            out.push_str(&format!(
                "@@ -{l} +{l} @@\n-{}\n+{}\n",
                o.trim_end_matches(['\n', '\r']),
                n.trim_end_matches(['\n', '\r'])
            ));
        }
    }
    out
}

/// A commit id as people read it (12 characters).
pub fn short(commit: &str) -> &str {
    &commit[..12.min(commit.len())]
}
