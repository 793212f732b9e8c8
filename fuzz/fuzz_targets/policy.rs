#![no_main]
//! Policy documents: see `crossrole_fuzz::policy`.

libfuzzer_sys::fuzz_target!(|text: &str| crossrole_fuzz::policy(text));
