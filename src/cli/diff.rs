//! `auth-diagnostics diff`.

use super::{DiffArgs, Out, Outcome, UsageError};

/// Runs `diff`.
pub(crate) fn run(args: &DiffArgs, out: &Out) -> Result<Outcome, UsageError> {
    let _ = (args, out);
    Err(UsageError("not built yet".into()))
}
