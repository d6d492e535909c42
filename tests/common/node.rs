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
            // playwright-core drives the system's Chromium; it never downloads one.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
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
    if apt_install(&["nodejs", "npm"]) {
        Ok(())
    } else {
        Err("node and npm are missing and could not be installed with apt-get".into())
    }
}

/// `apt-get update` and `apt-get install -y PACKAGES`, as root or through `sudo -n`.
pub fn apt_install(packages: &[&str]) -> bool {
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
    let install: Vec<&str> = ["apt-get", "install", "-y", "-qq"]
        .iter()
        .chain(packages)
        .copied()
        .collect();
    run(&["apt-get", "update", "-qq"]) && run(&install)
}

/// Debian's `chromium`, for the browser suite (driven by playwright-core, which downloads
/// no browser of its own): its path, installed with apt-get when missing (once per
/// process), or `None` with the reason printed when it cannot be had outside CI.
pub fn chromium() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(find_or_install_chromium) {
        Ok(path) => Some(path.clone()),
        Err(why) if in_ci() => panic!("browser suite cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping browser test: {why}");
            None
        }
    }
}

fn find_or_install_chromium() -> Result<PathBuf, String> {
    if let Some(path) = find_chromium() {
        return Ok(path);
    }
    if !apt_install(&["chromium"]) {
        return Err("chromium is missing and could not be installed with apt-get".into());
    }
    find_chromium().ok_or_else(|| "apt-get installed chromium, but it does not run".into())
}

/// `/usr/bin/chromium`, or `chromium` on `PATH`, when it runs.
fn find_chromium() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"));
    std::iter::once(PathBuf::from("/usr/bin/chromium"))
        .chain(on_path)
        .find(|p| p.is_file() && works(&p.to_string_lossy(), &["--version"]))
}
