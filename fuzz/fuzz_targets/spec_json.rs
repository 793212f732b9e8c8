#![no_main]
//! Spec files in JSON: see `crossrole_fuzz::spec_file`.

libfuzzer_sys::fuzz_target!(|text: &str| crossrole_fuzz::spec_file(text, true));
