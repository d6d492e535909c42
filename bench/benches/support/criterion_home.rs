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
