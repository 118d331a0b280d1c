//! Arbitrary bytes as a stack layer (tar, or gzipped tar) through
//! `dropship::stack::rootfs::unpack` (the layer applied entry by entry beneath the rootfs, then
//! the mount points). Errors are fine; a panic, or anything written beside the destination
//! (the `canary/` sibling), is a finding.
#![no_main]

use dropship_fuzz::{sandbox, Scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: sandbox(),
    |data: &[u8]| {
        let s = Scratch::new(data);
        let layer = [("sha256:fuzz".to_string(), s.input.clone())];
        let _ = dropship::stack::rootfs::unpack(&layer, &s.dest.join("rootfs"), &mut |_| ());
        s.assert_nothing_outside();
    }
);
