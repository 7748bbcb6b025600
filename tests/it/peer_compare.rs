//! How a peer case's result is judged: the way the peer's own test compares (bytes, trimmed text, a contained
//! snippet, YAML equality, assertions), then, where the peer re-serialises the file, YAML equality with no more
//! changed lines than the peer's.

use super::{PROBE_DIGEST, PROBE_TAG, Run, preprocess, read};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub enum Verdict {
    /// What the peer's test expects, compared as the peer compares.
    Same,
    /// The peer re-serialises; flowship's file holds the same YAML data, with no more changed lines.
    Semantic,
    /// The peer edits or does nothing; flowship refuses (exit code, first line), nothing written.
    Refuses(i32, String),
    /// The peer refuses; flowship edits.
    Edits(String),
    /// Both act, with different results.
    Differs(String),
    /// The case is no image bump flowship could be asked for.
    NotRun(String),
}

impl Verdict {
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Semantic => "semantic",
            Verdict::Refuses(..) => "refuses",
            Verdict::Edits(_) => "edits",
            Verdict::Differs(_) => "differs",
            Verdict::NotRun(_) => "not-run",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Verdict::Same | Verdict::Semantic => String::new(),
            Verdict::Refuses(code, line) => format!("exit {code}: {line}"),
            Verdict::Edits(d) | Verdict::Differs(d) | Verdict::NotRun(d) => d.clone(),
        }
    }
}

fn yaml_docs(text: &str) -> Option<Vec<yaml_serde::Value>> {
    yaml_serde::Deserializer::from_str(text)
        .map(yaml_serde::Value::deserialize)
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// `part` is contained in `whole`: every key of a mapping with a contained value; sequences and scalars equal.
fn contained(part: &yaml_serde::Value, whole: &yaml_serde::Value) -> bool {
    match (part, whole) {
        (yaml_serde::Value::Mapping(p), yaml_serde::Value::Mapping(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| contained(v, wv))),
        _ => part == whole,
    }
}

/// Lines of `new` that `old` does not have (as a multiset): a line count of the change.
fn changed_lines(old: &str, new: &str) -> usize {
    let mut have: BTreeMap<&str, usize> = BTreeMap::new();
    for l in old.lines() {
        *have.entry(l).or_default() += 1;
    }
    new.lines()
        .filter(|l| match have.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .count()
}

/// The error line of flowship's stderr (narration comes before it).
fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| l.starts_with("error"))
        .or_else(|| s.lines().rfind(|l| !l.trim().is_empty()))
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

pub fn verdict(dir: &Path, case: &Value, run: &Run) -> Verdict {
    let unchanged = run.after == run.before;
    let peer = case["peer_result"].as_str().unwrap();
    if run.code != 0 && peer == "extract" {
        return Verdict::Refuses(run.code, first_line(&run.stderr));
    }
    if run.code != 0 {
        if !unchanged {
            return Verdict::Differs(format!("exit {} and the branch changed", run.code));
        }
        return match peer {
            "error" => Verdict::Same,
            _ => Verdict::Refuses(run.code, first_line(&run.stderr)),
        };
    }
    match peer {
        "error" => Verdict::Edits(if unchanged {
            "exit 0, nothing changed".into()
        } else {
            "exit 0, edited".into()
        }),
        "noop" if unchanged => Verdict::Same,
        "noop" => Verdict::Differs(format!("edited {}", changed_files(run).join(", "))),
        "extract" => extracted(case, run),
        _ => edited(dir, case, run),
    }
}

fn changed_files(run: &Run) -> Vec<String> {
    run.after
        .iter()
        .filter(|(f, t)| run.before.get(*f) != Some(*t))
        .map(|(f, _)| f.display().to_string())
        .collect()
}

/// Renovate's extraction cases: the lines flowship changed are exactly the references the peer extracts.
fn extracted(case: &Value, run: &Run) -> Verdict {
    let images: Vec<&str> = case["image"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let deps: Vec<&Value> = case["peer_deps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            d["datasource"] == "docker"
                && d.get("skipReason").is_none()
                && images.contains(&d["depName"].as_str().unwrap_or_default())
        })
        .collect();
    let mut changed = Vec::new();
    for (f, after) in &run.after {
        let before = run.before.get(f).cloned().flatten().unwrap_or_default();
        let after = after.clone().unwrap_or_default();
        for (old, new) in before.lines().zip(after.lines()) {
            if old != new {
                changed.push((old.to_string(), new.to_string()));
            }
        }
    }
    let expected = deps.len();
    let matches = changed
        .iter()
        .filter(|(old, new)| {
            (new.contains(PROBE_TAG) || new.contains(PROBE_DIGEST))
                && deps.iter().any(|d| {
                    d["currentValue"].as_str().is_some_and(|v| old.contains(v))
                        || d["currentDigest"].as_str().is_some_and(|v| old.contains(v))
                })
        })
        .count();
    if changed.len() == expected && matches == expected {
        Verdict::Same
    } else {
        Verdict::Differs(format!(
            "changed {} lines ({} at the peer's references), the peer extracts {expected}",
            changed.len(),
            matches
        ))
    }
}

/// The peer edits: compare each expected file as the peer's test does, then every other file is unchanged.
fn edited(dir: &Path, case: &Value, run: &Run) -> Verdict {
    let compare = case["compare"].as_str().unwrap();
    let outputs: Vec<PathBuf> = case["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(PathBuf::from)
        .collect();
    if compare == "assertions" || outputs.is_empty() {
        return match run.after == run.before {
            true => Verdict::Differs("nothing changed".into()),
            false => Verdict::Same,
        };
    }
    let mut semantic = false;
    for f in &outputs {
        let want = preprocess(case, read(&dir.join("after").join(f)).unwrap_or_default());
        let got = run.after.get(f).cloned().flatten().unwrap_or_default();
        let before = run.before.get(f).cloned().flatten().unwrap_or_default();
        let literal = match compare {
            "exact" => got == want,
            "contains" => got.contains(&want),
            _ => got.trim() == want.trim(),
        };
        if literal {
            continue;
        }
        let (Some(g), Some(w)) = (yaml_docs(&got), yaml_docs(&want)) else {
            return Verdict::Differs(format!("{}: differs, not YAML", f.display()));
        };
        let equal = match compare {
            "contains" => w.len() == 1 && g.iter().any(|d| contained(&w[0], d)),
            _ => g == w,
        };
        let fewer =
            compare == "contains" || changed_lines(&before, &got) <= changed_lines(&before, &want);
        if !equal {
            return Verdict::Differs(format!("{}: other YAML data than the peer's", f.display()));
        }
        if !fewer {
            return Verdict::Differs(format!("{}: same data, more changed lines", f.display()));
        }
        semantic = true;
    }
    let others_kept = run
        .after
        .iter()
        .filter(|(f, _)| !outputs.contains(f))
        .all(|(f, t)| run.before.get(f) == Some(t));
    match (others_kept, semantic) {
        (false, _) => Verdict::Differs("edited files the peer leaves alone".into()),
        (true, true) => Verdict::Semantic,
        (true, false) => Verdict::Same,
    }
}
