//! Every scalar of a YAML stream with its document, path and exact byte range.
//!
//! saphyr-parser reports spans in characters, lets a scalar's span start at its `&anchor`/`!tag` properties,
//! and lets a quoted scalar's span run over trailing blanks and the comment (gitops-edit notes §2.1). The
//! spans here are corrected: bytes, properties skipped, quoted scalars ended at their closing quote.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>`: never edited (embedded manifests live here).
    Block,
}

#[derive(Debug, Clone)]
pub struct Scalar {
    pub doc: usize,
    pub path: Vec<Seg>,
    pub value: String,
    pub style: Style,
    /// Byte range of the scalar token, quotes included, properties and comment excluded.
    pub start: usize,
    pub end: usize,
    /// 1-based line of the token.
    pub line: usize,
}

/// A node that carries an `&anchor` (scalar, mapping or sequence).
#[derive(Debug, Clone)]
pub struct Anchor {
    pub doc: usize,
    pub path: Vec<Seg>,
    /// 1-based line of the `&name` (of the node when the name is not found before it).
    pub line: usize,
}

/// A `*name` in value position, or a merge key's alias (`<<: *name`, `<<: [*a, *b]`).
#[derive(Debug, Clone)]
pub struct AliasUse {
    pub doc: usize,
    /// Where the alias stands; for a merge, the merging mapping's path.
    pub path: Vec<Seg>,
    pub line: usize,
    pub name: String,
    /// The anchor it refers to (the parser's id); `None` when undefined (the parser refuses those).
    pub anchor: Option<usize>,
    /// A merge key's alias: its position in `<<: [...]` (0 for `<<: *a`); earlier ones win.
    pub merge: Option<usize>,
}

#[derive(Debug, Default)]
pub struct Scanned {
    pub scalars: Vec<Scalar>,
    /// Aliases in value position and through merge keys.
    pub aliases: Vec<AliasUse>,
    /// Anchored nodes, by the parser's anchor id.
    pub anchors: HashMap<usize, Anchor>,
    /// Every mapping key, by the mapping's path: a literal key overrides a merged one.
    pub keys: HashSet<(usize, Vec<Seg>, String)>,
    pub documents: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum YamlError {
    #[error("line {line}: not valid YAML: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: duplicate key `{key}` (readers disagree on which one wins)")]
    DuplicateKey { line: usize, key: String },
}

enum Frame {
    Map {
        path: Vec<Seg>,
        key: Option<String>,
        keys: HashSet<String>,
    },
    Seq {
        path: Vec<Seg>,
        index: usize,
    },
}

impl Frame {
    /// The path of the value that comes next in this container.
    fn child_path(&self) -> Vec<Seg> {
        match self {
            Frame::Map { path, key, .. } => {
                let mut p = path.clone();
                p.push(Seg::Key(key.clone().unwrap_or_default()));
                p
            }
            Frame::Seq { path, index } => {
                let mut p = path.clone();
                p.push(Seg::Index(*index));
                p
            }
        }
    }

    fn expects_key(&self) -> bool {
        matches!(self, Frame::Map { key: None, .. })
    }

    /// A value was consumed: a mapping waits for its next key, a sequence moves on.
    fn advance(&mut self) {
        match self {
            Frame::Map { key, .. } => *key = None,
            Frame::Seq { index, .. } => *index += 1,
        }
    }
}

struct Offsets<'a> {
    text: &'a str,
    /// Byte offset of each char index (only built for non-ASCII text).
    map: Option<Vec<usize>>,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        let map = (!text.is_ascii()).then(|| {
            text.char_indices()
                .map(|(b, _)| b)
                .chain([text.len()])
                .collect()
        });
        Self { text, map }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.map {
            Some(m) => m.get(char_index).copied().unwrap_or(self.text.len()),
            None => char_index.min(self.text.len()),
        }
    }
}

pub fn scan(text: &str) -> Result<Scanned, YamlError> {
    // A BOM is kept in the file but hidden from the parser (some parsers make it part of the first key).
    let (body, base) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (rest, '\u{feff}'.len_utf8()),
        None => (text, 0),
    };
    let offsets = Offsets::new(body);
    let line_of = |byte: usize| {
        body[..byte.min(body.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    };
    let mut out = Scanned::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut doc = 0usize;
    let mut parser = Parser::new_from_str(body);
    while let Some(ev) = parser.next_event() {
        let (event, span) = ev.map_err(|e| YamlError::Syntax {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index());
        match event {
            Event::DocumentStart(_) => {
                stack.clear();
            }
            Event::DocumentEnd => {
                doc += 1;
                out.documents = doc;
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let path = stack.last().map(Frame::child_path).unwrap_or_default();
                if anchor != 0 {
                    let line = anchor_line(body, start, &line_of);
                    out.anchors.insert(
                        anchor,
                        Anchor {
                            doc,
                            path: path.clone(),
                            line,
                        },
                    );
                }
                if let Some(Frame::Map { key: None, .. }) = stack.last() {
                    // A mapping or sequence used as a key: legal, never an image field. Give it a name.
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some("<complex key>".into());
                    }
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map {
                        path,
                        key: None,
                        keys: HashSet::new(),
                    }
                } else {
                    Frame::Seq { path, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if let Some(parent) = stack.last_mut() {
                    parent.advance();
                }
            }
            Event::Alias(id) => {
                if let Some(top) = stack.last_mut() {
                    if top.expects_key() {
                        if let Frame::Map { key, .. } = top {
                            *key = Some("<alias key>".into());
                        }
                        continue;
                    }
                    let path = top.child_path();
                    let (path, merge) = merge_target(path);
                    out.aliases.push(AliasUse {
                        doc,
                        path,
                        line: line_of(start),
                        name: alias_name(body, start),
                        anchor: out.anchors.contains_key(&id).then_some(id),
                        merge,
                    });
                    top.advance();
                }
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let Some(top) = stack.last_mut() else {
                    continue; // a document that is a bare scalar: nothing addressable
                };
                if top.expects_key() {
                    let line = line_of(start);
                    if let Frame::Map { key, keys, path } = top {
                        out.keys.insert((doc, path.clone(), value.to_string()));
                        if !keys.insert(value.to_string()) {
                            return Err(YamlError::DuplicateKey {
                                line,
                                key: value.to_string(),
                            });
                        }
                        *key = Some(value.to_string());
                    }
                    continue;
                }
                let path = top.child_path();
                let token_start = skip_properties(body, start);
                let (style, token_end) = match style {
                    ScalarStyle::Plain => (Style::Plain, trim_end(body, token_start, end)),
                    ScalarStyle::SingleQuoted => {
                        (Style::Single, quoted_end(body, token_start, b'\''))
                    }
                    ScalarStyle::DoubleQuoted => {
                        (Style::Double, quoted_end(body, token_start, b'"'))
                    }
                    _ => (Style::Block, end),
                };
                if anchor != 0 {
                    let line = anchor_line(body, start, &line_of);
                    out.anchors.insert(
                        anchor,
                        Anchor {
                            doc,
                            path: path.clone(),
                            line,
                        },
                    );
                }
                out.scalars.push(Scalar {
                    doc,
                    path,
                    value: value.to_string(),
                    style,
                    start: base + token_start,
                    end: base + token_end,
                    line: line_of(token_start),
                });
                top.advance();
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    out.documents = out.documents.max(doc);
    Ok(out)
}

/// A merge key's alias stands for its mapping: `m.<<` (or `m.<<[i]`) → `m`, with its rank.
fn merge_target(path: Vec<Seg>) -> (Vec<Seg>, Option<usize>) {
    let merge = Seg::Key("<<".into());
    match path.as_slice() {
        [p @ .., last] if *last == merge => (p.to_vec(), Some(0)),
        [p @ .., m, Seg::Index(i)] if *m == merge => (p.to_vec(), Some(*i)),
        _ => (path, None),
    }
}

/// `name` of the `*name` token at `pos`.
fn alias_name(text: &str, pos: usize) -> String {
    let rest = text.get(pos..).unwrap_or("");
    let rest = rest.strip_prefix('*').unwrap_or(rest);
    rest.chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
        .collect()
}

/// The line of the `&name` that anchors the node at `pos` (properties stand before their node, possibly on
/// the line above for a block collection).
fn anchor_line(text: &str, pos: usize, line_of: &impl Fn(usize) -> usize) -> usize {
    let head = text.get(..pos.min(text.len())).unwrap_or("");
    let here = text.get(pos..).unwrap_or("");
    if here.starts_with('&') {
        return line_of(pos);
    }
    match head.rfind('&') {
        Some(i) => line_of(i),
        None => line_of(pos),
    }
}

/// Skip `&anchor` and `!tag` properties (and the blanks after them) at the start of a node.
fn skip_properties(text: &str, mut pos: usize) -> usize {
    let b = text.as_bytes();
    while pos < b.len() && (b[pos] == b'&' || b[pos] == b'!') {
        while pos < b.len() && !matches!(b[pos], b' ' | b'\t' | b'\n' | b'\r') {
            pos += 1;
        }
        while pos < b.len() && matches!(b[pos], b' ' | b'\t') {
            pos += 1;
        }
    }
    pos
}

fn trim_end(text: &str, start: usize, end: usize) -> usize {
    let b = text.as_bytes();
    let mut e = end.min(b.len());
    while e > start && matches!(b[e - 1], b' ' | b'\t' | b'\n' | b'\r') {
        e -= 1;
    }
    e
}

/// The byte after the closing quote. Single quotes escape by doubling; double quotes by backslash.
fn quoted_end(text: &str, start: usize, quote: u8) -> usize {
    let b = text.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(s: &'a Scanned, path: &str) -> &'a Scalar {
        s.scalars
            .iter()
            .find(|x| {
                x.path
                    .iter()
                    .map(|p| match p {
                        Seg::Key(k) => k.clone(),
                        Seg::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
                    == path
            })
            .unwrap_or_else(|| panic!("no {path}"))
    }

    #[test]
    fn spans_are_exact_bytes_for_every_style() {
        let text = "\u{feff}# Ünïcödé 컨테이너\na:\n  tag:   \"1.2.3\"    # {\"$imagepolicy\": \"x:y:tag\"}\n  p: &v plain value  # c\n  s: 'it''s'\n  b: |\n    tag: fake\n---\nk: [x, \"y\" , z]\n";
        let s = scan(text).unwrap();
        let tag = find(&s, "a.tag");
        assert_eq!(&text[tag.start..tag.end], "\"1.2.3\"");
        assert_eq!(tag.line, 3);
        let p = find(&s, "a.p");
        assert_eq!(&text[p.start..p.end], "plain value");
        assert_eq!(&text[find(&s, "a.s").start..find(&s, "a.s").end], "'it''s'");
        assert_eq!(find(&s, "a.b").style, Style::Block);
        let y = find(&s, "k.1");
        assert_eq!((y.doc, &text[y.start..y.end]), (1, "\"y\""));
        assert_eq!(s.documents, 2);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_line() {
        assert_eq!(
            scan("a: 1\nb: 2\na: 3\n").unwrap_err(),
            YamlError::DuplicateKey {
                line: 3,
                key: "a".into()
            }
        );
    }

    #[test]
    fn aliases_and_merges_are_recorded() {
        let s = scan("base: &b {tag: v1}\nimg:\n  <<: [*b]\nt: *b\n").unwrap();
        let merge = s.aliases.iter().find(|a| a.merge.is_some()).unwrap();
        assert_eq!(merge.path, vec![Seg::Key("img".into())]);
        assert_eq!((merge.name.as_str(), merge.line), ("b", 3));
        let plain = s.aliases.iter().find(|a| a.merge.is_none()).unwrap();
        assert_eq!(plain.path, vec![Seg::Key("t".into())]);
        let anchor = &s.anchors[&plain.anchor.unwrap()];
        assert_eq!(
            (anchor.path.clone(), anchor.line),
            (vec![Seg::Key("base".into())], 1)
        );
    }

    #[test]
    fn crlf_is_fine() {
        let text = "a:\r\n  tag: v1\r\n";
        let s = scan(text).unwrap();
        let t = find(&s, "a.tag");
        assert_eq!(&text[t.start..t.end], "v1");
    }
}
