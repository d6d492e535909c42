//! `auth-diagnostics`: the client's side. Decodes a token, explains a 401, probes an API's
//! authentication answers against the standards, and diffs two requests.
//!
//! `cargo install auth-diagnostics --features cli`, then `auth-diagnostics --help`.

fn main() -> std::process::ExitCode {
    auth_diagnostics::cli::main()
}
