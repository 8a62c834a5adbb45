//! Any bytes as the certificate a server presents: its expiry or nothing, never a panic (the DER
//! walk is ops-core's own, behind its `probe` feature).
#![no_main]

use ops_core::probe::cert::not_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = not_after(data);
});
