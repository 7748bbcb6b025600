//! PyYAML's leniency about flow collections over several lines, for a parser that follows the spec: lines
//! inside a multi-line `{...}` / `[...]` that are not indented past the block holding it are indented by
//! as much as needed. Line numbers stay as they were; values do not change (inside flow context line breaks
//! and leading blanks fold away). Block scalars (`|`, `>`) and quoted scalars are left as they are.

/// `text` with such lines re-indented, or `None` when nothing needed it.
pub fn reindent(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut depth = 0usize;
    // The indentation of the line on which the outermost open flow collection started.
    let mut base = 0usize;
    let mut quote: Option<char> = None;
    // Inside a block scalar: lines indented more than this belong to it.
    let mut block_scalar: Option<usize> = None;
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                out.push_str(line);
                continue;
            }
            block_scalar = None;
        }
        if depth > 0 && quote.is_none() && !blank && indent <= base {
            out.push_str(&" ".repeat(base + 1 - indent));
            changed = true;
        }
        out.push_str(line);
        let starts_flow_at = depth == 0;
        scan_line(line, &mut depth, &mut quote);
        if starts_flow_at && depth > 0 {
            base = indent;
        }
        if depth == 0 && quote.is_none() && opens_block_scalar(line) {
            block_scalar = Some(indent);
        }
    }
    changed.then_some(out)
}

/// Track flow depth and open quotes through one line.
fn scan_line(line: &str, depth: &mut usize, quote: &mut Option<char>) {
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match *quote {
            Some('\'') => {
                if c == '\'' {
                    if bytes.get(i + 1) == Some(&'\'') {
                        i += 1;
                    } else {
                        *quote = None;
                    }
                }
            }
            Some(_) => {
                if c == '\\' {
                    i += 1;
                } else if c == '"' {
                    *quote = None;
                }
            }
            None => {
                let before = line_before(&bytes, i);
                match c {
                    '#' if i == 0 || bytes[i - 1].is_whitespace() => return,
                    '\'' | '"' if starts_token(&before, *depth) => *quote = Some(c),
                    '{' | '[' if *depth > 0 || starts_token(&before, 0) => *depth += 1,
                    '}' | ']' if *depth > 0 => *depth -= 1,
                    _ => {}
                }
            }
        }
        i += 1;
    }
}

fn line_before(chars: &[char], i: usize) -> String {
    chars[..i].iter().collect()
}

/// Whether a token starting after `before` (the line so far) starts a node: at the line's start, after
/// `key:`, `- `, `? `, an anchor or tag, or (inside flow) after `,`, `[`, `{`, `:`.
fn starts_token(before: &str, depth: usize) -> bool {
    let t = before.trim_end();
    if t.is_empty() || t.ends_with(':') || t.ends_with('-') || t.ends_with('?') {
        return true;
    }
    if depth > 0 && (t.ends_with(',') || t.ends_with('[') || t.ends_with('{')) {
        return true;
    }
    let last = t.rsplit(char::is_whitespace).next().unwrap_or("");
    (last.starts_with('&') || last.starts_with('!')) && before.ends_with(char::is_whitespace)
}

/// `key: |`, `- >-`, `key: |2+ # comment`.
fn opens_block_scalar(line: &str) -> bool {
    let code = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let last = code
        .trim_end()
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("");
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| matches!(c, '-' | '+') || c.is_ascii_digit())
        && {
            let before = code.trim_end().strip_suffix(last).unwrap_or("").trim_end();
            before.is_empty() || before.ends_with(':') || before.ends_with('-')
        }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use serde_json::json;

    #[test]
    fn flow_collections_back_at_their_blocks_indentation_load_as_pyyaml_reads_them() {
        assert_eq!(
            load("a:\n  b: {\n  c: 1\n  }\n").unwrap(),
            json!({"a": {"b": {"c": 1}}})
        );
        assert_eq!(
            load("a:\n  b: {c: 1,\n  d: [2,\n3]}\n").unwrap(),
            json!({"a": {"b": {"c": 1, "d": [2, 3]}}})
        );
        assert_eq!(
            load("a:\n  s: |\n    {\n  b: {\n  c: '{'\n  }\n").unwrap(),
            json!({"a": {"s": "{\n", "b": {"c": "{"}}})
        );
        assert!(load("a: {\n").is_err());
    }
}
