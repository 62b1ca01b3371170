//! Passenger's "Process management" walkthrough, replayed against the real `ferry` binary:
//! one process at start, min instances, growing under a burst, shrinking when idle, queue
//! overflow and rolling restarts.

use ferry_e2e::{concurrent_gets, get, pid_of, Ferry, Load, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// Counts outcomes by status (0 for a broken exchange).
fn by_status(outcomes: &[Outcome]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts
            .entry(outcome.as_ref().map_or(0, |r| r.status))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn start_runs_exactly_one_process_which_serves_requests() {
    let ferry = Ferry::start_testapp(&[], &[]);
    let pids = ferry.wait_ready(1, LIMIT);
    let response = get(ferry.addr(), "/").expect("GET /");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        format!("Hello from ferry-testapp pid {}\n", pids[0])
    );
    let status = ferry.status();
    assert_eq!(status["process_count"], 1, "{status}");
    assert_eq!(ferry.all_pids(), pids);
}

#[test]
fn min_instances_two_starts_two_processes() {
    let ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let pids = ferry.wait_ready(2, LIMIT);
    assert_ne!(pids[0], pids[1]);
    assert!(pids.iter().all(|pid| ferry_e2e::process_alive(*pid)));
    assert_eq!(ferry.status()["process_count"], 2);
}

#[test]
fn burst_grows_the_pool_to_max_pool_size_and_spreads_requests_over_every_process() {
    let ferry = Ferry::start_testapp(&["--max-pool-size", "6"], &[]);
    ferry.wait_ready(1, LIMIT);
    let paths = vec!["/sleep?ms=200".to_string(); 200];
    let outcomes = concurrent_gets(ferry.addr(), &paths);

    let counts = by_status(&outcomes);
    assert!(
        counts.keys().all(|s| *s == 200 || *s == 503),
        "only 200 and 503 expected: {counts:?}"
    );
    let served: BTreeSet<u32> = outcomes
        .iter()
        .flatten()
        .filter(|r| r.status == 200)
        .filter_map(pid_of)
        .collect();
    let pool = ferry.all_pids();
    assert_eq!(
        pool.len(),
        6,
        "the pool grew to --max-pool-size; status: {}",
        ferry.status()
    );
    assert_eq!(
        served,
        pool.iter().copied().collect::<BTreeSet<u32>>(),
        "every process served some requests, and only pool processes served ({counts:?})"
    );
    for outcome in outcomes.iter().flatten().filter(|r| r.status == 503) {
        assert!(
            outcome.header("retry-after").is_some(),
            "a 503 carries Retry-After"
        );
    }
}

#[test]
fn idle_processes_above_min_instances_are_stopped_after_pool_idle_time() {
    let ferry = Ferry::start_testapp(
        &[
            "--max-pool-size",
            "4",
            "--pool-idle-time",
            "2",
            "--max-request-queue-size",
            "0",
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let paths = vec!["/sleep?ms=300".to_string(); 16];
    let outcomes = concurrent_gets(ferry.addr(), &paths);
    assert_eq!(by_status(&outcomes), BTreeMap::from([(200, 16)]));

    // Right after the burst nobody has been idle for 2 s yet: the pool is still grown.
    let grown = ferry.all_pids().len();
    assert!(
        grown > 1,
        "the burst grew the pool; status: {}",
        ferry.status()
    );

    let left = ferry.wait_ready(1, LIMIT);
    assert_eq!(
        ferry.total("idle_shutdowns"),
        grown as u64 - 1,
        "{}",
        ferry.status()
    );
    assert_eq!(
        get(ferry.addr(), "/pid").map(|r| pid_of(&r)).unwrap(),
        Some(left[0])
    );
}

#[test]
fn a_full_request_queue_answers_503_with_retry_after() {
    let ferry = Ferry::start_testapp(
        &["--max-pool-size", "1", "--max-request-queue-size", "2"],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let addr = ferry.addr();
    // Three clients fill the only process and the two queue slots...
    let first: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || get(addr, "/sleep?ms=1500")))
        .collect();
    ferry_e2e::wait_for("one request in the process and two queued", LIMIT, || {
        let group = ferry.group();
        (group["queue"] == 2 && group["processes"][0]["sessions"] == 1).then_some(())
    });
    // ...so five more, at once, find the queue full.
    let late = concurrent_gets(addr, &vec!["/sleep?ms=1500".to_string(); 5]);
    let first: Vec<Outcome> = first
        .into_iter()
        .map(|h| h.join().unwrap().map_err(|e| e.to_string()))
        .collect();

    assert_eq!(by_status(&first), BTreeMap::from([(200, 3)]), "{first:?}");
    let counts = by_status(&late);
    assert!(counts.keys().all(|s| *s == 200 || *s == 503), "{counts:?}");
    assert!(
        counts.get(&503).copied().unwrap_or(0) >= 1,
        "some requests got 503: {counts:?}"
    );
    for rejected in late.iter().flatten().filter(|r| r.status == 503) {
        let retry_after: u32 = rejected
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!(retry_after > 0);
        assert!(
            rejected.text().contains("queue is full"),
            "{}",
            rejected.text()
        );
    }
}

#[test]
fn rolling_restart_replaces_every_process_without_failing_a_request() {
    let ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let old: BTreeSet<u32> = ferry.wait_ready(2, LIMIT).into_iter().collect();
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(5, LIMIT);

    let out = ferry.ferry_command(&["restart", "--port", &ferry.port.to_string()]);
    assert!(
        out.status.success(),
        "ferry restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new: BTreeSet<u32> = ferry_e2e::wait_for("every process replaced", LIMIT, || {
        let ready: BTreeSet<u32> = ferry.pids_in("ready").into_iter().collect();
        (ready.len() == 2 && ferry.all_pids().len() == 2 && ready.is_disjoint(&old))
            .then_some(ready)
    });
    load.wait_more(5, LIMIT);
    let outcomes = load.stop();

    let failed = ferry_e2e::failures(&outcomes);
    assert!(
        failed.is_empty(),
        "no request fails during a rolling restart: {failed:?}"
    );
    let served: BTreeSet<u32> = outcomes.iter().flatten().filter_map(pid_of).collect();
    assert!(
        served.is_subset(&old.union(&new).copied().collect()),
        "{served:?} old {old:?} new {new:?}"
    );
    assert!(
        old.iter().all(|pid| !ferry_e2e::process_alive(*pid)),
        "the old processes are gone"
    );
}
