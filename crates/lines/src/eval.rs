//! `tern eval`: each line is an arithmetic expression, answered with its value or with
//! `error: ` and the reason. The evaluation itself is [`super::arithmetic`]; this module only
//! adapts it to the line protocol and adds the optional `--delay`.

use std::time::Duration;

use super::arithmetic::{evaluate_line_within, EvalErrorKind};
use super::{LineProtocol, Reply};

pub struct Eval {
    /// Hold every answer back this long (stands in for a slow backend).
    pub delay: Option<Duration>,
    /// Work budget of one line (`--max-work`, in the units of
    /// [`super::arithmetic::DEFAULT_WORK_BUDGET`]); a line that needs more is refused with
    /// `error: too much work for one line`, so that no line holds the worker for long.
    pub max_work: u64,
}

impl LineProtocol for Eval {
    type Session = ();

    fn start_session(&self) {}

    fn respond(&self, _: &mut (), line: &str) -> Reply {
        match evaluate_line_within(line, self.max_work) {
            Ok(value) => Reply::line(value),
            Err(error) => {
                if error.kind == EvalErrorKind::TooMuchWork {
                    tracing::info!(
                        "eval line refused: more work than --max-work {}",
                        self.max_work
                    );
                }
                Reply::line(format!("error: {error}"))
            }
        }
    }

    fn delay(&self) -> Option<Duration> {
        self.delay
    }
}
