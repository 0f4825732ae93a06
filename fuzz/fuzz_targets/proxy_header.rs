//! Fuzzes the PROXY protocol header parser (`proxy_protocol::parse`).
//!
//! Checks, besides "no panic": a complete header is at most the input and within its version's
//! size limit, and parses the same from its own bytes alone (what follows it does not matter);
//! every shorter prefix of a complete or incomplete header asks for more bytes, never looks
//! broken (the server takes a header that arrives in pieces); a known total length is more than
//! what arrived and within the limit; a refusal says why.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::proxy_protocol::{parse, Parsed, V1_MAX_BYTES, V2_MAX_BYTES, V2_SIGNATURE};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parsed::Complete { length, client } => {
            assert!(length <= data.len(), "{length} > {}", data.len());
            let limit = if data.starts_with(V2_SIGNATURE) {
                V2_MAX_BYTES
            } else {
                V1_MAX_BYTES
            };
            assert!(length <= limit, "a {length}-byte header");
            assert_eq!(parse(&data[..length]), Parsed::Complete { length, client });
            assert_prefixes_incomplete(&data[..length]);
        }
        Parsed::Incomplete { total } => {
            if let Some(total) = total {
                assert!(total > data.len() && total <= V2_MAX_BYTES, "total {total}");
            }
            assert_prefixes_incomplete(data);
        }
        Parsed::Invalid(why) => assert!(!why.is_empty()),
    }
});

fn assert_prefixes_incomplete(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..cut]), Parsed::Incomplete { .. }),
            "prefix of {cut} bytes: {:?}",
            parse(&bytes[..cut])
        );
    }
}
