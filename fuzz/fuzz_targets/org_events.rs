#![no_main]
//! Messages from the Organizations events queue: see `crossrole_fuzz::org_events`.

libfuzzer_sys::fuzz_target!(|body: &str| crossrole_fuzz::org_events(body));
