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
            // Python keeps what follows the margin, trailing blanks included (griffe then keeps them in
            // a parameter's description).
            out.push(l.get(indent..).unwrap_or("").to_string());
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
    // griffe reads the docstring without its trailing blanks: the last line's are gone, others' stay.
    let lines: Vec<&str> = doc.trim_end().lines().collect();
    // griffe starts a section only after a blank line (so never on the first line): `Summary\nArgs:` is text.
    let Some(start) = (1..lines.len()).find(|&i| {
        let l = lines[i];
        matches!(
            l.trim().trim_end_matches(':').to_ascii_lowercase().as_str(),
            "args" | "arguments" | "params" | "parameters"
        ) && l.trim().ends_with(':')
            && lines[i - 1].trim().is_empty()
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
            let text = l.trim_start();
            if let Some((head, rest)) = text.split_once(':') {
                let name = head
                    .split_once(' ')
                    .map(|(n, _)| n)
                    .unwrap_or(head)
                    .trim()
                    .trim_start_matches('*')
                    .to_string();
                current = Some((name, vec![rest.trim_start().to_string()]));
            }
        } else if let Some((_, d)) = current.as_mut() {
            d.push(l.trim_start().to_string());
        }
    }
    if let Some((n, d)) = current {
        out.insert(n, d.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CBIIT's bucket_reader: an `Args:` line ending in a blank. Python's `inspect.cleandoc` and griffe keep
    /// it, so Prefect's parameter description does.
    #[test]
    fn trailing_blanks_are_kept_as_python_keeps_them() {
        let doc =
            cleandoc("Read.\n\n    Args:\n        runner (str): a name. \n        n: count\n    ");
        assert_eq!(
            doc,
            "Read.\n\nArgs:\n    runner (str): a name. \n    n: count"
        );
        let args = google_args(&doc);
        assert_eq!(args["runner"], "a name. ");
        assert_eq!(args["n"], "count");
        // What Prefect 3.9.1's `parameter_docstrings` returns for each.
        for (doc, x, z) in [
            ("S.\n\nArgs:\n    x: y \n    z: w \n", "y ", "w"),
            (
                "S.\n\nArgs:\n    x: y \n    z: w \n\nReturns:\n    q",
                "y ",
                "w ",
            ),
            (
                "S.\n\nArgs:\n    x: y \n        more \n    z: w ",
                "y \nmore ",
                "w",
            ),
        ] {
            let args = google_args(doc);
            assert_eq!((args["x"].as_str(), args["z"].as_str()), (x, z), "{doc:?}");
        }
        // CBIIT's gc_liftover_helper: no blank line before `Args:`, no section for griffe.
        assert!(google_args("Main flow\nArgs:\n    x (str): y").is_empty());
        assert!(google_args("Args:\n    x (str): y").is_empty());
        assert_eq!(google_args("Main\n   \nArgs:\n    x: y")["x"], "y");
    }
}
