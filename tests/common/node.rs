//! Node and the npm packages of `interop/` (pinned by its committed lock file), for the
//! suites that drive real clients and servers. On a machine without Node they are set up
//! here; where that is impossible the suite skips, except in CI (`CI=true`), where it must
//! run and fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `interop/` folder: `package.json`, its lock file, the scripts.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Whether this run is CI, where interop suites must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `interop/` with its packages installed (`npm ci` once per process, when the installed
/// tree is missing or older than the lock file), or `None` with the reason printed when
/// Node cannot be had outside CI.
pub fn interop() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(setup) {
        Ok(dir) => Some(dir.clone()),
        Err(why) if in_ci() => panic!("interop suite cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping interop test: {why}");
            None
        }
    }
}

fn setup() -> Result<PathBuf, String> {
    if !works("node", &["--version"]) || !works("npm", &["--version"]) {
        install_node()?;
    }
    let dir = interop_dir();
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let fresh = match (modified(&lock), modified(&installed)) {
        (Some(l), Some(i)) => i >= l,
        _ => false,
    };
    if !fresh {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm ci: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(dir)
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Debian's Node and npm, when this machine can install packages.
fn install_node() -> Result<(), String> {
    let sudo: &[&str] = if works("id", &["-u"])
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        &[]
    } else {
        &["sudo", "-n"]
    };
    let run = |args: &[&str]| {
        let all: Vec<&str> = sudo.iter().chain(args).copied().collect();
        Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if run(&["apt-get", "update", "-qq"])
        && run(&["apt-get", "install", "-y", "-qq", "nodejs", "npm"])
    {
        Ok(())
    } else {
        Err("node and npm are missing and could not be installed with apt-get".into())
    }
}
