//! Scalars as a reader of the document sees them: the literal ones, plus the ones an alias (`key: *name`) or a
//! merge key (`<<: *name`, `<<: [*a, *b]`) puts at another path. Helm, Kubernetes and kustomize all resolve
//! these, so a repository that only arrives through `<<: *app-image` is as much a reference as a literal one.
//! A resolved value keeps the bytes of its anchor: editing it means editing every user of the anchor, which
//! the planner refuses (naming the alias) unless the anchor itself is being set to the same value.

use crate::gitops::yaml::{Scalar, Scanned, Seg};
use std::collections::HashSet;

/// Resolved scalars per file at most: an alias bomb stops here instead of exhausting memory.
const MAX_NODES: usize = 50_000;

/// Where a resolved scalar came from.
#[derive(Debug, Clone)]
pub struct Via {
    pub alias: String,
    /// The alias's line.
    pub line: usize,
    pub anchor_line: usize,
    pub merge: bool,
}

/// A scalar at its effective path; `via` is set when it arrives through an alias.
#[derive(Debug, Clone)]
pub struct Node {
    pub s: Scalar,
    pub via: Option<Via>,
}

/// Literal scalars first (document order), then resolved ones. Nested aliases resolve over a few rounds.
pub fn nodes(scanned: &Scanned) -> Vec<Node> {
    let mut out: Vec<Node> = scanned
        .scalars
        .iter()
        .map(|s| Node {
            s: s.clone(),
            via: None,
        })
        .collect();
    if scanned.aliases.is_empty() {
        return out;
    }
    let mut taken: HashSet<(usize, Vec<Seg>)> =
        out.iter().map(|n| (n.s.doc, n.s.path.clone())).collect();
    // Earlier merge sources win over later ones; literal keys win over all of them.
    let mut aliases: Vec<_> = scanned.aliases.iter().collect();
    aliases.sort_by_key(|a| a.merge.unwrap_or(0));
    for _round in 0..4 {
        let before = out.len();
        for a in &aliases {
            let Some(anchor) = a.anchor.and_then(|id| scanned.anchors.get(&id)) else {
                continue;
            };
            let via = Via {
                alias: a.name.clone(),
                line: a.line,
                anchor_line: anchor.line,
                merge: a.merge.is_some(),
            };
            let mut fresh = Vec::new();
            for n in &out {
                if n.s.doc != anchor.doc || !n.s.path.starts_with(&anchor.path) {
                    continue;
                }
                let rest = &n.s.path[anchor.path.len()..];
                if a.merge.is_some() {
                    let Some(Seg::Key(k)) = rest.first() else {
                        continue;
                    };
                    if scanned.keys.contains(&(a.doc, a.path.clone(), k.clone())) {
                        continue;
                    }
                } else if rest.is_empty() && n.s.path.is_empty() {
                    continue;
                }
                let mut path = a.path.clone();
                path.extend_from_slice(rest);
                if !taken.insert((a.doc, path.clone())) {
                    continue;
                }
                let mut s = n.s.clone();
                s.path = path;
                s.doc = a.doc;
                fresh.push(Node {
                    s,
                    via: Some(via.clone()),
                });
            }
            out.extend(fresh);
            if out.len() > MAX_NODES {
                out.truncate(MAX_NODES);
                return out;
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}
