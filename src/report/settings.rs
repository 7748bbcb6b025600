//! `settings`: every resolved value with its source, as aligned text or `{"settings": {key: {value, source,
//! secret}}}`.

use crate::error::Error;
use crate::output::{Printer, Style};
use crate::settings::Entry;

/// Each key, its value (secrets redacted already) and where it came from.
pub fn settings(entries: &[Entry], printer: &Printer) -> Result<(), Error> {
    if printer.is_json() {
        let map: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|e| {
                let v =
                    serde_json::json!({ "value": e.value, "source": e.source, "secret": e.secret });
                (e.key.to_string(), v)
            })
            .collect();
        return printer.json(&serde_json::json!({ "settings": map }));
    }
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        let value = match &e.value {
            None => printer.paint("-", Style::Dim),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let source = e
            .source
            .as_deref()
            .map(|s| printer.paint(&format!("({s})"), Style::Dim))
            .unwrap_or_default();
        out.push_str(&format!("{:width$}  {value}  {source}\n", e.key).replace("  \n", "\n"));
    }
    printer.data(&out)
}
