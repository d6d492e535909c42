#![no_main]

#[path = "../common/http_auth.rs"]
mod http_auth_parser;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auth_diagnostics::fuzzing::dpop(data, http_auth_parser::parse)
});
