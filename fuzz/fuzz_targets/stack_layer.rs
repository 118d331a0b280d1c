//! Arbitrary bytes as a stack layer (tar, or gzipped tar) through
//! `dropship::stack::rootfs::apply_layer`. Errors are fine; a panic, or anything written
//! beside the destination (the `canary/` sibling), is a finding.
#![no_main]

use dropship_fuzz::{sandbox, Scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: sandbox(),
    |data: &[u8]| {
        let s = Scratch::new(data);
        let _ = dropship::stack::rootfs::apply_layer(&s.input, &s.dest);
        s.assert_nothing_outside();
    }
);
