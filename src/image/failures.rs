//! What a failed install means, from the installer's own words: one hint per kind of failure (a missing
//! wheel is only one of them). Kept apart from `deps`, which runs the installer.

/// What the installer's own words say went wrong, and what to do: one hint per kind of failure (a missing
/// wheel is only one of them).
pub(super) fn hint(output: &str, python: &str) -> String {
    let o = output.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| o.contains(w));
    // uv names a source-only package this way; its "unsatisfiable" that follows is not a pin conflict.
    if let Some(name) = output
        .split("Wheels are required for `")
        .nth(1)
        .and_then(|r| r.split('`').next())
    {
        return format!(
            "`{name}` publishes no wheel for the target (source only): pin a version that ships one, or build its wheel and name it in the requirements (`./wheels/{name}-….whl`)"
        );
    }
    if let Some(name) = linux_only_elsewhere(output) {
        return format!(
            "`{name}` has no wheel for this base (its wheels need a newer glibc, musl, or another Python): pin a version with a wheel for this base, or use a newer base (--base)"
        );
    }
    // uv: "Because pywin32==311 has no wheels with a matching platform tag ...": a Windows-only pin, typically
    // from a `pip freeze` made on another machine.
    if let Some(pin) = output
        .split(" has no wheels with a matching platform tag")
        .next()
        .filter(|b| b.len() < output.len())
        .and_then(|b| b.rsplit([' ', '\n']).next())
    {
        return format!(
            "`{pin}` has wheels for other platforms only (a requirements file frozen on another system?): drop it, or give it a marker (`; sys_platform == \"win32\"`)"
        );
    }
    if has(&[
        "requires-python",
        "requires a different python",
        "python>=",
        "requires python",
    ]) {
        format!(
            "a package does not support Python {python}: pin a version that does, or build on a base with the Python it needs (--base, or --python-version)"
        )
    } else if has(&[
        "resolutionimpossible",
        "conflict",
        "no solution found",
        "unsatisfiable",
    ]) {
        "the requirements pin versions that cannot be installed together: fix the pins (the installer's output above names them)".into()
    } else if has(&[
        "invalid requirement",
        "could not parse",
        "parse error",
        "expected package name",
        "error parsing",
    ]) {
        "a line of the requirements file is not a requirement: fix it (the installer's output above names it)".into()
    } else if has(&[
        "git clone",
        "git checkout",
        "did not run successfully",
        "git@",
        "git+",
    ]) {
        "a git requirement could not be fetched: check its URL and credentials, or publish it as a wheel".into()
    } else if has(&["401", "403", "unauthorized", "forbidden"]) {
        "the package index refused the request: check its credentials (PIP_INDEX_URL / UV_INDEX_URL, ~/.netrc)".into()
    } else {
        "every requirement needs a wheel for the target platform (--only-binary=:all:); pin versions that ship one".into()
    }
}

/// The package whose only wheels are for another Linux than the base's: uv's "Wheels are available for
/// `x` (v1.0) on the following platform: `manylinux_2_99_x86_64`", uv's "A path (wh/x-1.0-….whl) dependency
/// is incompatible with the current platform", pip's "x-1.0-….whl is not a supported wheel on this
/// platform".
fn linux_only_elsewhere(output: &str) -> Option<String> {
    if let Some(rest) = output.split("Wheels are available for `").nth(1) {
        let name = rest.split('`').next()?;
        let platforms = rest.lines().next().unwrap_or("");
        if platforms.contains("manylinux") || platforms.contains("musllinux") {
            return Some(name.to_string());
        }
    }
    let wheel = output
        .split(" dependency is incompatible with the current platform")
        .next()
        .filter(|b| b.len() < output.len())
        .and_then(|b| b.rsplit(['(', '/', ' ']).next())
        .map(|w| w.trim_end_matches(')').to_string())
        .or_else(|| {
            let before = output
                .split(" is not a supported wheel on this platform")
                .next()?;
            (before.len() < output.len())
                .then(|| before.rsplit([' ', '/']).next().unwrap_or("").to_string())
        })?;
    wheel
        .ends_with(".whl")
        .then(|| wheel.split('-').next().unwrap_or(&wheel).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installer_failures_get_the_hint_of_their_kind() {
        assert!(
            hint(
                "ERROR: Package 'x' requires a different Python: 3.11.7 not in '>=3.12'",
                "3.11"
            )
            .contains("Python 3.11")
        );
        assert!(
            hint("ResolutionImpossible: conflict", "3.11").contains("cannot be installed together")
        );
        assert!(hint("ERROR: Invalid requirement: 'x=='", "3.11").contains("not a requirement"));
        assert!(hint("No matching distribution found for x", "3.11").contains("wheel"));
        let uv = "we can conclude that your requirements are unsatisfiable.\nhint: Wheels are required for `grpclib` because building from source is disabled";
        assert!(hint(uv, "3.11").contains("`grpclib` publishes no wheel"));
        let newer = "fitless==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_36_x86_64`)\n\nhint: Wheels are available for `fitless` (v1.0) on the following platform: `manylinux_2_99_x86_64`";
        assert!(hint(newer, "3.11").contains("`fitless` has no wheel for this base"));
        let path = "  cause: A path (wh/fitless-1.0-cp311-cp311-manylinux_2_99_x86_64.whl) dependency is incompatible with the current platform";
        assert!(hint(path, "3.11").contains("`fitless` has no wheel for this base"));
        let pip = "ERROR: fitless-1.0-cp311-cp311-manylinux_2_99_x86_64.whl is not a supported wheel on this platform.";
        assert!(hint(pip, "3.11").contains("`fitless` has no wheel for this base"));
        let win = "  ╰─▶ Because pywin32==311 has no wheels with a matching platform tag (e.g., `manylinux_2_28_x86_64`)";
        assert!(hint(win, "3.11").contains("`pywin32==311` has wheels for other platforms only"));
    }
}
