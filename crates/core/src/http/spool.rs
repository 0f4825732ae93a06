//! A request body received whole before the application is called (as nginx does for the
//! servers behind it with `proxy_request_buffering`), when memory does not take it whole (see
//! [`crate::http::body_budget`] for the memory larger bodies may use): in memory up to
//! `--body-buffer-size`, then in an unlinked temporary file in `--body-temp-dir`, so a large
//! upload costs disk rather than memory and a slow one costs no application thread.
//!
//! The file is made with `O_TMPFILE` where the file system has it (else created and unlinked at
//! once), so it has no name, and closing its last descriptor frees it: nothing is left behind,
//! whatever happens to the worker. Writes are plain `write(2)` calls from the event loop, as nginx
//! makes them: they land in the page cache. Each piece is written as it was read, so the
//! connection reads in large pieces while a body streams here.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::config::RequestBodies;

/// A whole request body, wherever it was kept.
#[derive(Debug)]
pub enum ReceivedBody {
    Memory(Bytes),
    /// In an unlinked file, from its start, this many bytes.
    File(File, u64),
}

impl ReceivedBody {
    pub fn len(&self) -> u64 {
        match self {
            ReceivedBody::Memory(bytes) => bytes.len() as u64,
            ReceivedBody::File(_, len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Collects the pieces of a body as they are decoded.
#[derive(Debug)]
pub struct BodySpool<'a> {
    config: &'a RequestBodies,
    /// What arrived so far, while it fits in `config.memory_limit`.
    memory: BytesMut,
    /// The body goes to a file: its declared length is over the memory limit, or what arrived
    /// outgrew it.
    to_file: bool,
    /// Once the first piece went there: the file holding all of it.
    file: Option<File>,
    /// Body bytes collected.
    len: u64,
}

impl<'a> BodySpool<'a> {
    /// A spool for a body of `declared` bytes (None: chunked, length unknown).
    pub fn new(config: &'a RequestBodies, declared: Option<u64>) -> Self {
        BodySpool {
            config,
            memory: BytesMut::new(),
            to_file: declared.is_some_and(|len| len > config.memory_limit as u64),
            file: None,
            len: 0,
        }
    }

    /// Adds the next piece of the body. Fails only if the temporary file cannot be made or
    /// written (a full disk, say).
    pub fn push(&mut self, piece: &[u8]) -> io::Result<()> {
        self.len += piece.len() as u64;
        if let Some(file) = &mut self.file {
            return file.write_all(piece);
        }
        if !self.to_file && self.memory.len() + piece.len() <= self.config.memory_limit {
            self.memory.extend_from_slice(piece);
            return Ok(());
        }
        let mut file = temp_file(&self.config.temp_dir)?;
        file.write_all(&self.memory)?;
        file.write_all(piece)?;
        self.memory = BytesMut::new();
        self.to_file = true;
        self.file = Some(file);
        Ok(())
    }

    /// Whether the body's bytes go to a file (rather than memory) from now on.
    pub fn in_file(&self) -> bool {
        self.to_file
    }

    /// Body bytes collected so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body, once the last piece is in.
    pub fn finish(self) -> ReceivedBody {
        match self.file {
            Some(file) => ReceivedBody::File(file, self.len),
            None => ReceivedBody::Memory(self.memory.freeze()),
        }
    }
}

/// A new unlinked file in `dir`.
fn temp_file(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

/// Checks at start-up that bodies can be spooled in `dir`, so a bad `--body-temp-dir` is a usage
/// error rather than a 500 on the first large upload.
pub fn check_temp_dir(dir: &Path) -> io::Result<()> {
    let mut probe = temp_file(dir)?;
    probe.write_all(b"tern")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    fn config(memory_limit: usize) -> RequestBodies {
        RequestBodies {
            buffer: true,
            memory_limit,
            memory_budget: 0,
            temp_dir: std::env::temp_dir(),
        }
    }

    #[test]
    fn a_body_within_the_limit_stays_in_memory() {
        let config = config(10);
        let mut spool = BodySpool::new(&config, None);
        spool.push(b"hello").unwrap();
        spool.push(b"world").unwrap();
        match spool.finish() {
            ReceivedBody::Memory(bytes) => assert_eq!(&bytes[..], b"helloworld"),
            other => panic!("expected memory, got {other:?}"),
        }
    }

    #[test]
    fn a_body_over_the_limit_moves_whole_to_a_file() {
        let config = config(10);
        let mut spool = BodySpool::new(&config, None);
        spool.push(b"hello").unwrap();
        spool.push(b"world!").unwrap();
        spool.push(b" and more").unwrap();
        match spool.finish() {
            ReceivedBody::File(mut file, len) => {
                assert_eq!(len, 20);
                file.rewind().unwrap();
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                assert_eq!(text, "helloworld! and more");
            }
            other => panic!("expected a file, got {other:?}"),
        }
    }

    #[test]
    fn a_body_declared_over_the_limit_goes_to_a_file_from_its_first_piece() {
        let config = config(10);
        let mut spool = BodySpool::new(&config, Some(11));
        assert!(spool.in_file());
        spool.push(b"hello").unwrap();
        spool.push(b"world!").unwrap();
        match spool.finish() {
            ReceivedBody::File(mut file, len) => {
                assert_eq!(len, 11);
                file.rewind().unwrap();
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                assert_eq!(text, "helloworld!");
            }
            other => panic!("expected a file, got {other:?}"),
        }
        assert!(!BodySpool::new(&config, Some(10)).in_file());
        assert!(!BodySpool::new(&config, None).in_file());
    }

    #[test]
    fn a_missing_directory_is_reported() {
        assert!(check_temp_dir(Path::new("/nonexistent/tern-spool")).is_err());
        assert!(check_temp_dir(&std::env::temp_dir()).is_ok());
    }
}
