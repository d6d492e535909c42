#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_diagnostics_fuzz::jwt(data));
