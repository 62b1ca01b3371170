//! `--memory-limit MB` (issue 9, Passenger Enterprise's name): a process whose memory, as
//! `ferry status` shows it, goes above the limit is replaced after its current requests, its
//! replacement started and ready first, so no request fails.

use ferry_e2e::{get, pid_of, process_alive, wait_for, Ferry, Load};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_process_over_the_memory_limit_is_replaced_with_no_failed_request() {
    let ferry = Ferry::start_testapp(&["--memory-limit", "40", "--max-pool-size", "1"], &[]);
    let old = ferry.wait_ready(1, LIMIT)[0];
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(10, LIMIT);
    // 64 MiB of written memory: over the limit at the next measurement.
    let response = get(ferry.addr(), "/alloc?mb=64").expect("GET /alloc");
    assert_eq!(pid_of(&response), Some(old), "{}", response.text());
    let new = wait_for("the process over the limit replaced", LIMIT, || {
        let pids = ferry.all_pids();
        (pids.len() == 1 && pids[0] != old && !process_alive(old)).then(|| pids[0])
    });
    load.wait_more(10, LIMIT);
    let outcomes = load.stop();
    let failed = ferry_e2e::failures(&outcomes);
    assert!(
        failed.is_empty(),
        "no request fails: {failed:?}\n{}",
        ferry.output_text()
    );
    assert!(outcomes.iter().flatten().any(|r| pid_of(r) == Some(new)));
    assert_eq!(ferry.total("memory_limit_replacements"), 1);
}
