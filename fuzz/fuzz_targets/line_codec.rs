//! Fuzzes the line codec (`tern_lines::codec::LineReader`) over a scripted socket.
//!
//! Checks, besides "no panic": no line is longer than the limit or holds a line feed; the events
//! match a plain reference split of the input ("\n" or "\r\n" endings, a last line without an
//! ending, UTF-8 or not, too long stops the stream); and they do not depend on the reads.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tern_lines::codec::{LineEvent, LineReader};
use tern_fuzz::{block_on, split_into_reads, Rng, ScriptedSocket};

/// Never reached: the scripted socket is always ready.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_input(data);
    for max_line in [rng.below(48), 64 + rng.below(4096)] {
        let expected = reference_events(data, max_line);
        let whole = read_events(&[data], max_line);
        assert_eq!(whole, expected, "whole input, max_line {max_line}");
        let reads = split_into_reads(data, &mut rng);
        let split = read_events(&reads, max_line);
        assert_eq!(
            split,
            expected,
            "{} reads, max_line {max_line}",
            reads.len()
        );
    }
});

/// Every event up to the end of the stream (or the first too-long line, after which the service
/// closes the connection).
fn read_events(reads: &[&[u8]], max_line: usize) -> Vec<LineEvent> {
    let total: usize = reads.iter().map(|read| read.len()).sum();
    let mut socket = ScriptedSocket::new(reads);
    let mut reader = LineReader::new(max_line);
    block_on(async {
        let mut events = Vec::new();
        loop {
            assert!(events.len() <= total + 1, "more events than input bytes");
            let event = reader
                .next_line(&mut socket, IDLE_TIMEOUT)
                .await
                .expect("a scripted socket never fails");
            if let LineEvent::Line(line) = &event {
                assert!(
                    line.len() <= max_line,
                    "a line of {} bytes over the {max_line}-byte limit",
                    line.len()
                );
                assert!(!line.contains('\n'));
            }
            let last = matches!(event, LineEvent::Closed | LineEvent::TooLong);
            assert!(event != LineEvent::Idle, "idle on an always-ready socket");
            events.push(event);
            if last {
                return events;
            }
        }
    })
}

/// The specification: lines end at "\n", one "\r" before it (or at the very end) is dropped, and a
/// line longer than `max_line` without its ending stops the stream.
fn reference_events(data: &[u8], max_line: usize) -> Vec<LineEvent> {
    let mut events = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(lf) => (&rest[..lf], &rest[lf + 1..]),
            None => (rest, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let too_long = line.len() > max_line;
        if too_long {
            events.push(LineEvent::TooLong);
            return events;
        }
        events.push(match std::str::from_utf8(line) {
            Ok(text) => LineEvent::Line(text.to_owned()),
            Err(_) => LineEvent::InvalidUtf8,
        });
        rest = tail;
    }
    events.push(LineEvent::Closed);
    events
}
