//! Golden files: the expected output of a test, kept beside it and rewritten on request.

use std::path::Path;

/// The one switch that rewrites every golden file from what the tests produce.
const UPDATE: &str = "KILN_UPDATE_GOLDEN";

/// Asserts that `actual` equals the file at `path`, naming the first line that differs.
/// With `KILN_UPDATE_GOLDEN=1` in the environment the file is rewritten first (review the
/// diff before committing it).
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} ({UPDATE}=1 writes it)", path.display()));
    if actual == expected {
        return;
    }
    let line = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, e)| a != e)
        .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
    panic!(
        "output differs from {} at line {} ({UPDATE}=1 rewrites it):\n  got:      {:?}\n  expected: {:?}",
        path.display(),
        line + 1,
        actual.lines().nth(line),
        expected.lines().nth(line)
    );
}
