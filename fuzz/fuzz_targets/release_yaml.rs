//! Arbitrary text through the four parsers of `dropship::staging::release` (`bin/release`
//! output, Procfile, launch.yml, config.yml): pure functions that must never panic.
#![no_main]

use dropship::staging::release::{parse_config, parse_launch, parse_procfile, parse_release};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_release(text);
    let _ = parse_procfile(text);
    let _ = parse_launch(text);
    let _ = parse_config(text);
});
