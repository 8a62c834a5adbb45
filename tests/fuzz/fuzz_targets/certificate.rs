//! Any bytes as the certificate a server presents: its expiry or nothing, never a panic (the DER
//! walk is the monitor's own).
#![no_main]

use legacy_health_monitor::cert::not_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = not_after(data);
});
