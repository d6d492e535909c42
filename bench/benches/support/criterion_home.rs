//! [`criterion_home`]: where criterion writes its estimates, for the benches that print
//! ratios from them. Included with `#[path = "support/criterion_home.rs"] mod
//! criterion_home;`.

/// Where criterion writes its estimates, found as criterion finds it: `CRITERION_HOME`,
/// else `criterion` in `CARGO_TARGET_DIR` or in the target directory `cargo metadata`
/// names, else `target/criterion`.
pub fn criterion_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let out = std::process::Command::new(std::env::var_os("CARGO")?)
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .output()
                .ok()?;
            let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            Some(meta["target_directory"].as_str()?.into())
        })
        .unwrap_or_else(|| "target".into());
    target.join("criterion")
}

/// Criterion's estimates of `group`/`line`, if this run wrote them (at or after `since`):
/// a filtered run leaves other lines' older estimates in place.
pub fn estimates(
    group: &str,
    line: &str,
    since: std::time::SystemTime,
) -> Option<serde_json::Value> {
    let path = criterion_home()
        .join(group)
        .join(line)
        .join("new/estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
}

/// The mean of [`estimates`], in criterion's unit (ns).
#[allow(dead_code)]
pub fn mean_ns(group: &str, line: &str, since: std::time::SystemTime) -> Option<f64> {
    estimates(group, line, since)?["mean"]["point_estimate"].as_f64()
}

/// The time per request (ns) criterion prints for `group`/`line`: its slope estimate, or
/// the mean when it has none.
#[allow(dead_code)]
pub fn estimate_ns(group: &str, line: &str, since: std::time::SystemTime) -> Option<f64> {
    let e = estimates(group, line, since)?;
    e["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| e["mean"]["point_estimate"].as_f64())
}
