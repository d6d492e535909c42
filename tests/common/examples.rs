//! The compiled examples, for suites that run one as a process.

/// The compiled example `name` (`target/<profile>/examples/NAME`), built once per test
/// binary: `cargo test --test X` alone builds no examples.
pub fn example_binary(name: &'static str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<&'static str, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(bin) = built.get(name) {
        return bin.clone();
    }
    // target/<profile>/deps/TEST-HASH
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    // The profile whose output directory this binary is in (`test` for debug).
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "test",
        Some(other) => other,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --example {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("examples").join(name);
    assert!(bin.is_file(), "no example at {}", bin.display());
    built.insert(name, bin.clone());
    bin
}

/// The demo as a process: `DEMO_ADDR=127.0.0.1:0`, JSON logs, `env` on top, none of the
/// caller's own `DEMO_*` or `RUST_LOG` variables, stdout piped (its start lines and log).
pub fn spawn_demo(env: &[(&str, &str)]) -> std::process::Child {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(example_binary("demo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DEMO_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("DEMO_ADDR", "127.0.0.1:0")
        .env("DEMO_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the demo starts")
}
