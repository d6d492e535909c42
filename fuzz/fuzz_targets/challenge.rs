#![no_main]

#[path = "../common/http_auth.rs"]
mod http_auth_parser;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auth_diagnostics::fuzzing::challenge(data, http_auth_parser::parse)
});
