//! Python docstrings as Prefect reads them: `inspect.cleandoc` for a flow's description, griffe's Google-style
//! `Args:` section for parameter descriptions.

use std::collections::HashMap;

/// `inspect.cleandoc`: strip the first line's leading blanks and the common indentation of the rest, and blank
/// lines at either end.
pub fn cleandoc(doc: &str) -> String {
    let doc = doc.replace('\t', "        ");
    let lines: Vec<&str> = doc.lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            out.push(l.trim_start().to_string());
        } else {
            out.push(l.get(indent..).unwrap_or("").trim_end().to_string());
        }
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// The `Args:` section of a Google-style docstring (griffe's parser): `name: text` or `name (type): text`, with
/// continuation lines indented deeper, joined by newlines.
pub fn google_args(doc: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let lines: Vec<&str> = doc.lines().collect();
    let Some(start) = lines.iter().position(|l| {
        matches!(
            l.trim().trim_end_matches(':').to_ascii_lowercase().as_str(),
            "args" | "arguments" | "params" | "parameters"
        ) && l.trim().ends_with(':')
    }) else {
        return out;
    };
    let section_indent = lines[start].len() - lines[start].trim_start().len();
    let mut item_indent: Option<usize> = None;
    let mut current: Option<(String, Vec<String>)> = None;
    for l in &lines[start + 1..] {
        if l.trim().is_empty() {
            break;
        }
        let ind = l.len() - l.trim_start().len();
        if ind <= section_indent {
            break;
        }
        let item = *item_indent.get_or_insert(ind);
        if ind == item {
            if let Some((n, d)) = current.take() {
                out.insert(n, d.join("\n"));
            }
            let text = l.trim();
            if let Some((head, rest)) = text.split_once(':') {
                let name = head
                    .split_once(' ')
                    .map(|(n, _)| n)
                    .unwrap_or(head)
                    .trim()
                    .trim_start_matches('*')
                    .to_string();
                current = Some((name, vec![rest.trim().to_string()]));
            }
        } else if let Some((_, d)) = current.as_mut() {
            d.push(l.trim().to_string());
        }
    }
    if let Some((n, d)) = current {
        out.insert(n, d.join("\n"));
    }
    out
}
