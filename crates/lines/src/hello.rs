//! `tern hello`: the same fixed text in answer to every message.

use super::{LineProtocol, Reply};

/// The text sent when `--text` is not given.
pub const DEFAULT_TEXT: &str = "Hello from server!";

pub struct Hello {
    pub text: String,
}

impl LineProtocol for Hello {
    type Session = ();

    fn start_session(&self) {}

    fn respond(&self, _: &mut (), _line: &str) -> Reply {
        Reply::line(self.text.clone())
    }
}
