//! Any bytes as an image reference: a reference that prints back to itself, or a specific error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ops_core::image::ImageRef;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match ImageRef::parse(text) {
            Ok(reference) => assert_eq!(ImageRef::parse(&reference.to_string()).unwrap(), reference),
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
});
