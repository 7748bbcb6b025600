//! Mappings as PyYAML's constructor sees them, for its merge keys (`<<`). PyYAML 6 flattens a mapping node in
//! place: the merged pairs first, then its own, duplicates kept, and its value is built from that list, the
//! later pair winning. A merge copies the *flattened pairs* of the mapping it names (not its value), skipping a
//! pair whose key is the very same Python string object as one already taken (`id(key_node.value)`). Keys are
//! the same object when they come from the same node (one mapping merged twice, or through two merges), and
//! for CPython's cached strings (the empty string and single latin-1 characters) whatever node they come from.
//! So a shadowed merged pair can come back: with `b: &b {<<: *a, n: 2}` and `c: {<<: *b}`, `c.n` is `a`'s `n`
//! (the key `n` is cached: the first pair wins), while a longer key takes `b`'s own value (both pairs are kept,
//! the later wins). This module keeps each mapping's pairs with those identities, so that `load` gives
//! PyYAML's values (found by the differential test against PyYAML).

use serde_json::{Map, Value};
use std::collections::HashSet;
use std::rc::Rc;

/// The identity PyYAML's merge deduplicates keys on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum KeyId {
    /// A string CPython caches (empty, or one character below U+0100): one object wherever it is read.
    Cached(String),
    /// A key node of its own.
    Node(usize),
}

/// A flattened mapping node: `(key, value, key identity)`, merged pairs first, duplicates kept.
pub(super) type Pairs = Vec<(String, Value, KeyId)>;

/// A node as its parent sees it: its value, the pairs of a mapping, the items' pairs of a sequence (a merge
/// of several mappings), and its identity as a key.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub value: Value,
    pub pairs: Option<Rc<Pairs>>,
    pub items: Option<Rc<Vec<Option<Rc<Pairs>>>>>,
    pub id: KeyId,
}

/// Hands out node identities.
#[derive(Default)]
pub(super) struct Ids(usize);

impl Ids {
    pub fn fresh(&mut self) -> KeyId {
        self.0 += 1;
        KeyId::Node(self.0)
    }

    /// The identity of a scalar read as `text`.
    pub fn of_scalar(&mut self, text: &str) -> KeyId {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (None, _) => KeyId::Cached(String::new()),
            (Some(c), None) if (c as u32) < 0x100 => KeyId::Cached(c.to_string()),
            _ => self.fresh(),
        }
    }
}

impl Node {
    pub fn leaf(value: Value, id: KeyId) -> Self {
        Self {
            value,
            pairs: None,
            items: None,
            id,
        }
    }
}

/// A mapping's node from its own pairs and the merges it named (in order): PyYAML's `flatten_mapping`, then
/// its construction. `Err` when a merge names something other than a mapping or a list of mappings.
pub(super) fn mapping(own: Pairs, merges: &[Node], id: KeyId) -> Result<Node, ()> {
    let mut merged: Pairs = Vec::new();
    let mut seen: HashSet<KeyId> = HashSet::new();
    for m in merges {
        let sources: Vec<&Rc<Pairs>> = match (&m.pairs, &m.items) {
            (Some(p), _) => vec![p],
            (None, Some(items)) => items
                .iter()
                .map(|i| i.as_ref().ok_or(()))
                .collect::<Result<_, _>>()?,
            (None, None) => return Err(()),
        };
        for src in sources {
            for (k, v, kid) in src.iter() {
                if seen.insert(kid.clone()) {
                    merged.push((k.clone(), v.clone(), kid.clone()));
                }
            }
        }
    }
    merged.extend(own);
    let mut map = Map::new();
    for (k, v, _) in &merged {
        map.insert(k.clone(), v.clone());
    }
    Ok(Node {
        value: Value::Object(map),
        pairs: Some(Rc::new(merged)),
        items: None,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_follow_cpythons_cached_strings() {
        let mut ids = Ids::default();
        assert_eq!(ids.of_scalar("n"), KeyId::Cached("n".into()));
        assert_eq!(ids.of_scalar("é"), KeyId::Cached("é".into()));
        assert_eq!(ids.of_scalar(""), KeyId::Cached(String::new()));
        assert_ne!(ids.of_scalar("中"), ids.of_scalar("中"));
        assert_ne!(ids.of_scalar("key"), ids.of_scalar("key"));
    }

    #[test]
    fn a_shadowed_merged_pair_returns_for_cached_keys_only() {
        let mut ids = Ids::default();
        let a = mapping(
            vec![
                ("n".into(), json!(1), ids.of_scalar("n")),
                ("key".into(), json!(1), ids.of_scalar("key")),
            ],
            &[],
            ids.fresh(),
        )
        .unwrap();
        let b = mapping(
            vec![
                ("n".into(), json!(2), ids.of_scalar("n")),
                ("key".into(), json!(2), ids.of_scalar("key")),
            ],
            std::slice::from_ref(&a),
            ids.fresh(),
        )
        .unwrap();
        assert_eq!(b.value, json!({"n": 2, "key": 2}));
        let c = mapping(Vec::new(), &[b], ids.fresh()).unwrap();
        assert_eq!(
            c.value,
            json!({"n": 1, "key": 2}),
            "PyYAML 6.0.4 gives this"
        );
        let not_a_mapping = Node::leaf(json!(1), ids.fresh());
        assert!(mapping(Vec::new(), &[not_a_mapping], ids.fresh()).is_err());
    }
}
