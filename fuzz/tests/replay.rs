//! Replays every fuzz seed (`fuzz/corpus/<target>/`) and every crash the fuzzers found
//! (`fuzz/regressions/<target>/`) through the functions the fuzz targets call, so each
//! commit proves them on the stable toolchain (`cargo test` at the root runs it). Running
//! the fuzzers themselves: `fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The files of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `run` on every input of `target`, and fails naming every input that panicked.
fn replay(target: &str, run: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seeds for {target} under fuzz/corpus");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable input");
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn credentials() {
    replay("credentials", auth_diagnostics_fuzz::credentials);
}

#[test]
fn challenge() {
    replay("challenge", auth_diagnostics_fuzz::challenge);
}

#[test]
fn jwt() {
    replay("jwt", auth_diagnostics_fuzz::jwt);
}

#[test]
fn basic() {
    replay("basic", auth_diagnostics_fuzz::basic);
}

#[test]
fn cookie() {
    replay("cookie", auth_diagnostics_fuzz::cookie);
}

#[test]
fn jwks() {
    replay("jwks", auth_diagnostics_fuzz::jwks);
}

#[test]
fn dpop() {
    replay("dpop", auth_diagnostics_fuzz::dpop);
}

#[test]
fn problem() {
    replay("problem", auth_diagnostics_fuzz::problem);
}
