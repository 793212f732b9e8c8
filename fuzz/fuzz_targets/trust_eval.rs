#![no_main]
//! The trust and request evaluators: see `crossrole_fuzz::trust_eval`.

libfuzzer_sys::fuzz_target!(|input: crossrole_fuzz::TrustInput| crossrole_fuzz::trust_eval(&input));
