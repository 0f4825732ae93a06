//! `tern eval`: each line is an arithmetic expression, answered with its value or with
//! `error: ` and the reason. The evaluation itself is [`super::arithmetic`]; this module only
//! adapts it to the line protocol and adds the optional `--delay`.

use std::time::Duration;

use super::arithmetic::evaluate_line;
use super::{LineProtocol, Reply};

pub struct Eval {
    /// Hold every answer back this long (stands in for a slow backend).
    pub delay: Option<Duration>,
}

impl LineProtocol for Eval {
    type Session = ();

    fn start_session(&self) {}

    fn respond(&self, _: &mut (), line: &str) -> Reply {
        match evaluate_line(line) {
            Ok(value) => Reply::line(value),
            Err(error) => Reply::line(format!("error: {error}")),
        }
    }

    fn delay(&self) -> Option<Duration> {
        self.delay
    }
}
