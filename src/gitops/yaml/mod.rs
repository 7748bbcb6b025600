//! Byte-exact YAML edits. A real parser locates each scalar; an edit replaces only that scalar's bytes
//! (comments, blank lines, key order, indentation, quoting elsewhere, anchors, CRLF, BOM and other documents
//! stay as they are), and the result is parsed again to prove that exactly the intended values changed.
//! Nothing is ever re-serialised.

mod quote;
mod scan;

pub use quote::render;
pub use scan::{Scalar, Scanned, Seg, Style, YamlError, scan};
