//! How a new value is written: in the old value's quote style, and plain only when no YAML 1.1 reader
//! (PyYAML, go-yaml v2, Helm) nor YAML 1.2 reader could take it for anything but a string. The real-world
//! failures this prevents: `1.20` → 1.2, `0362525` → octal, `2024-06-27` → a date, `on` → true.

use super::scan::Style;
use regex::Regex;
use std::sync::LazyLock;

/// YAML 1.1 implicit types as PyYAML resolves them, plus the YAML 1.2 core schema.
static NON_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^(?:
        # bool (1.1 and 1.2) and the single letters some 1.1 readers take
          y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
        # null
        | ~|null|Null|NULL
        # int: 1.1 binary, octal, decimal with _, hex, sexagesimal; 1.2 0o octal
        | [-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
        | 0o[0-7]+
        # float: 1.1 (PyYAML) and 1.2
        | [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)? | [-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)? | [-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
        | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
        # timestamp (1.1)
        | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[\ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[\ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?
        # merge key and 1.1 value key
        | <<|=
        )$",
    )
    .expect("valid regex")
});

/// Whether `s` must be quoted to stay a string.
pub fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s.trim() != s || NON_STRING.is_match(s) {
        return true;
    }
    let first = s.as_bytes()[0];
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) {
        return true;
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

fn double(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The bytes that replace a scalar token of `style` so that it reads as `value`.
pub fn render(style: Style, value: &str) -> Option<String> {
    match style {
        Style::Double => Some(double(value)),
        Style::Single => Some(format!("'{}'", value.replace('\'', "''"))),
        Style::Plain if needs_quotes(value) => Some(double(value)),
        Style::Plain => Some(value.to_string()),
        Style::Block => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_some_reader_would_not_read_as_a_string() {
        for v in [
            "1.20",
            "0362525",
            "3108617",
            "2024-06-27",
            "on",
            "yes",
            "Y",
            "null",
            "~",
            "1e3",
            "1_000",
            "0x1F",
            "190:20:30",
            ".inf",
            "",
            "-x",
            "a: b",
            "<<",
        ] {
            assert!(needs_quotes(v), "{v:?} must be quoted");
        }
        for v in [
            "1.2.3",
            "v1.2.3",
            "3-python3.11-kubernetes",
            "sha256:abc",
            "latest",
            "2024.06.27",
            "main-0123abcd",
            "1.2.3@sha256:ab",
        ] {
            assert!(!needs_quotes(v), "{v:?} can stay plain");
        }
    }

    #[test]
    fn keeps_the_old_style() {
        assert_eq!(render(Style::Double, "1.2.4").unwrap(), "\"1.2.4\"");
        assert_eq!(render(Style::Single, "it's").unwrap(), "'it''s'");
        assert_eq!(render(Style::Plain, "1.2.4").unwrap(), "1.2.4");
        assert_eq!(render(Style::Plain, "1.20").unwrap(), "\"1.20\"");
        assert_eq!(render(Style::Block, "x"), None);
    }
}
