//! The httparse oracle ([`crate::oracle`]) over the random heads of `random_input_tests`.

use super::oracle::assert_httparse_agrees;
use super::random_input_tests::{random_input, HEAD_FRAGMENTS, REQUEST_SEEDS};
use super::split_feeding::Lcg;
use super::*;

/// Whether ferry accepts `input`; if it does, httparse must read it the same way.
fn accepted_alike(input: &[u8]) -> bool {
    let Ok(Some(head)) = parse_request_head(input, &Limits::default()) else {
        return false;
    };
    assert_httparse_agrees(input, &head);
    true
}

#[test]
fn every_head_ferry_accepts_httparse_reads_the_same() {
    for seed in REQUEST_SEEDS {
        assert!(accepted_alike(seed), "{}", seed.escape_ascii());
    }
    let mut random = Lcg::new(17);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let input = random_input(&mut random, REQUEST_SEEDS, HEAD_FRAGMENTS);
        accepted += usize::from(accepted_alike(&input));
    }
    assert!(
        accepted > 1000,
        "too few accepted heads to compare: {accepted}"
    );
}
