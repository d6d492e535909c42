//! `auth-diagnostics probe`.

use super::{Out, Outcome, ProbeArgs, UsageError};

/// Runs `probe`.
pub(crate) fn run(args: &ProbeArgs, out: &Out) -> Result<Outcome, UsageError> {
    let _ = (args, out);
    Err(UsageError("not built yet".into()))
}
