//! `auth-diagnostics explain`.

use super::{ExplainArgs, Out, Outcome, UsageError};

/// Runs `explain`.
pub(crate) fn run(args: &ExplainArgs, out: &Out) -> Result<Outcome, UsageError> {
    let _ = (args, out);
    Err(UsageError("not built yet".into()))
}
