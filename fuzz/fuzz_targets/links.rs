#![no_main]
//! Switch Role links and AWS CLI profiles: see `crossrole_fuzz::links`.

libfuzzer_sys::fuzz_target!(|input: crossrole_fuzz::LinkInput| crossrole_fuzz::links(&input));
