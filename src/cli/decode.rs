//! `auth-diagnostics decode`.

use super::{DecodeArgs, Out, Outcome, UsageError};

/// Runs `decode`.
pub(crate) fn run(args: &DecodeArgs, out: &Out) -> Result<Outcome, UsageError> {
    let _ = (args, out);
    Err(UsageError("not built yet".into()))
}
