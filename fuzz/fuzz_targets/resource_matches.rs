//! Arbitrary bytes as the body of `POST /v3/resource_matches` and as the upload's `resources`
//! field, through the streaming parsers of `dropship::service::resource_list`. Never panics,
//! never hands the sink more than the limit or a batch larger than `BATCH`.
#![no_main]

use dropship::service::resource_list::{parse_list, parse_request, Descriptor, BATCH};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64;

fn check(entries: &mut usize) -> impl FnMut(Vec<Descriptor>) -> Result<(), String> + '_ {
    move |batch| {
        assert!(!batch.is_empty() && batch.len() <= BATCH);
        *entries += batch.len();
        assert!(*entries <= MAX, "{} entries past the limit of {MAX}", *entries);
        for d in &batch {
            assert!(d.mode.is_none_or(|m| m.bits() <= 0o777));
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut n = 0;
    let _ = parse_request(data, MAX, &mut check(&mut n));
    let mut n = 0;
    let _ = parse_list(data, MAX, &mut check(&mut n));
});
