//! `tern echo`: every line comes back, after an optional prefix.

use super::{LineProtocol, Reply};

pub struct Echo {
    /// Put before each echoed line (`--prefix GOT:`).
    pub prefix: String,
}

impl LineProtocol for Echo {
    type Session = ();

    fn start_session(&self) {}

    fn respond(&self, _: &mut (), line: &str) -> Reply {
        Reply::line(format!("{}{line}", self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_with_prefix() {
        assert_eq!(
            Echo {
                prefix: "GOT:".into()
            }
            .respond(&mut (), "hi"),
            Reply::line("GOT:hi")
        );
        assert_eq!(
            Echo {
                prefix: String::new()
            }
            .respond(&mut (), ""),
            Reply::line("")
        );
    }
}
