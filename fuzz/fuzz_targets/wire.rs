#![no_main]
//! API messages from any bytes: see `crossrole_fuzz::wire`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((kind, bytes)) = data.split_first() {
        crossrole_fuzz::wire(*kind, bytes);
    }
});
