//! Where on the branch the image is referenced, and the edits that set it: every file under the path globs
//! (discovered), or the explicit `FILE:YAML.PATH` targets. A bump that finds no reference at all is bad input
//! (exit 2), never "nothing to change": it names the image, what was searched, and the closest references
//! it did see. Files that are not YAML (a chart's `templates/`) are skipped unless a glob names them.

use super::{Bumper, FilePlan, usage};
use crate::error::Error;
use crate::gitops::images::{self, EditError, FileScan, Found, Target};

/// Everything one planning pass saw.
#[derive(Debug, Default)]
pub(super) struct Planned {
    pub files: Vec<FilePlan>,
    pub found: Vec<Found>,
    pub skipped: Vec<Found>,
    pub others: Vec<Found>,
}

impl Planned {
    fn add(&mut self, rel: &str, text: &str, scan: FileScan) {
        // A marked value is found by its shape and by its marker: count each place once.
        for f in scan.found {
            if !self
                .found
                .iter()
                .any(|g| g.file == f.file && g.line == f.line)
            {
                self.found.push(f);
            }
        }
        self.skipped.extend(scan.skipped);
        self.others.extend(scan.others);
        if scan.changes.is_empty() {
            return;
        }
        match self.files.iter_mut().find(|p| p.rel == rel) {
            Some(p) => {
                let fresh: Vec<_> = scan
                    .changes
                    .into_iter()
                    .filter(|c| !p.changes.iter().any(|x| x.start == c.start))
                    .collect();
                p.changes.extend(fresh);
                p.new = images::apply(&p.old, &p.changes);
            }
            None => self.files.push(FilePlan {
                rel: rel.into(),
                old: text.into(),
                new: images::apply(text, &scan.changes),
                changes: scan.changes,
            }),
        }
    }
}

/// A glob without wildcards names one file: that file must parse.
fn named(globs: &[String], rel: &str) -> bool {
    globs
        .iter()
        .any(|g| g == rel && !g.contains(['*', '?', '[', '{']))
}

/// The repository as it appears in text (`flows/etl`, `nginx`): cheap to look for, hard to hit by chance.
fn spelled(t: &Target) -> String {
    let name = images::familiar(&t.repository);
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest.into(),
        _ => name,
    }
}

impl Bumper {
    pub(super) fn plan_explicit(&self, target: &Target) -> Result<Planned, Error> {
        tracing::debug!("scanning the branch's manifests for {}", target.repository);
        let mut out = Planned::default();
        for (rel, path) in &self.req.explicit {
            let text = match out.files.iter().find(|p| p.rel == *rel) {
                Some(p) => p.old.clone(),
                None => self.checkout.read_path(rel).ok_or_else(|| {
                    usage(
                        format!("target file `{rel}` is not a text file in the GitOps repository"),
                        "targets are FILE:YAML.PATH with FILE relative to the repository root",
                    )
                })?,
            };
            let scan = images::plan_path(rel, &text, path, target)?;
            out.add(rel, &text, scan);
        }
        Ok(out)
    }

    /// Every file under the globs. `screen`: skip files that name neither the repository nor a policy
    /// before parsing them (the fast path; off when looking for the closest references after a miss).
    pub(super) fn plan_discovered(&self, t: &Target, screen: bool) -> Result<Planned, Error> {
        let only = self.known_files(&t.repository);
        // Counted by a test (a release scans the branch a bounded number of times).
        match &only {
            None => tracing::debug!("scanning the branch's manifests for {}", t.repository),
            Some(f) => tracing::debug!(
                "reading the {} file(s) that reference {} at this commit",
                f.len(),
                t.repository
            ),
        }
        let needle = t
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&t.repository)
            .to_string();
        let spelled = spelled(t);
        let mut out = Planned::default();
        for entry in self.checkout.files()? {
            let rel = entry.path;
            if !self.req.globs.is_match(&rel) || only.as_ref().is_some_and(|o| !o.contains(&rel)) {
                continue;
            }
            let Some(text) = self.checkout.read(entry.oid) else {
                continue;
            };
            if screen
                && !text.contains(&needle)
                && !t.policies.iter().any(|p| text.contains(p.as_str()))
            {
                continue;
            }
            match images::plan(&rel, &text, t) {
                Ok(scan) => out.add(&rel, &text, scan),
                Err(EditError::Yaml { file, source }) if !named(&self.req.glob_list, &rel) => {
                    // Helm templates, Go templates, other formats under a broad glob: not manifests.
                    tracing::debug!("{file}: skipped, not YAML flowship can read ({source})");
                    if text.contains(&spelled) {
                        out.skipped.push(Found {
                            file,
                            line: 1,
                            path: String::new(),
                            value: spelled.clone(),
                            reason: Some(format!(
                                "names the image, but is not YAML flowship can read ({source}); not searched"
                            )),
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// The files known to reference `image` at the checkout's head (see `Bumper::known`), if any.
    fn known_files(&self, image: &str) -> Option<Vec<String>> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let (commit, of, files) = known.as_ref()?;
        (*commit == self.base() && of == image).then(|| files.clone())
    }

    /// No reference to the image anywhere it looked: what was searched, and what it saw instead.
    pub(super) fn nothing_found(&self, planned: &Planned) -> Result<Error, Error> {
        let t = &self.req.target;
        let searched = if self.req.explicit.is_empty() {
            format!("files matching {}", self.req.glob_list.join(", "))
        } else {
            let list: Vec<String> = self
                .req
                .explicit
                .iter()
                .map(|(f, p)| format!("{f}:{p}"))
                .collect();
            format!("targets {}", list.join(", "))
        };
        let mut seen: Vec<Found> = planned.skipped.clone();
        let mut others = planned.others.clone();
        if others.is_empty() && self.req.explicit.is_empty() {
            others = self
                .plan_discovered(t, false)
                .map(|p| p.others)
                .unwrap_or_default();
        }
        let score = |f: &Found| {
            let repo = crate::registry::Reference::parse(&f.value)
                .map(|r| r.repository_ref())
                .unwrap_or_else(|_| f.value.clone());
            strsim::jaro_winkler(&repo, &t.repository)
        };
        others.sort_by(|a, b| score(b).total_cmp(&score(a)));
        others.dedup_by(|a, b| a.value == b.value);
        seen.extend(others.into_iter().take(3));
        let mut message = format!(
            "no reference to {} on branch {} of {}: searched {searched}; nothing was written",
            t.repository,
            self.req.branch,
            self.req.display_url()
        );
        if seen.is_empty() {
            message.push_str("\n  (no image references at all there)");
        } else {
            message.push_str("\n  closest references seen:");
            for f in &seen {
                message.push_str(&format!(
                    "\n    {}:{} {} = {}{}",
                    f.file,
                    f.line,
                    if f.path.is_empty() { "-" } else { &f.path },
                    f.value,
                    f.reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
        }
        Ok(Error::Usage {
            message,
            hint: Some(
                "check --image (the repository the manifests name) and --paths / gitops.paths / --target; \
                 a reference flowship cannot read is listed above with the reason"
                    .into(),
            ),
        })
    }
}
