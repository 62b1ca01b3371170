//! The pool follows the traffic, against the real binary: after a burst grows the pool, light
//! traffic lets it shrink back.

use ferry_e2e::{concurrent_gets, get, wait_for, Ferry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// The idle time the shrink test runs with.
const POOL_IDLE_TIME_S: u64 = 5;

/// Sends GET `path` every `every` until dropped: light traffic, one request at a time.
struct Trickle {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<usize>>,
}

impl Trickle {
    fn start(addr: std::net::SocketAddr, path: &str, every: Duration) -> Trickle {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, path) = (stop.clone(), path.to_string());
        let handle = std::thread::spawn(move || {
            let mut failures = 0;
            while !flag.load(Ordering::SeqCst) {
                if !get(addr, &path).is_ok_and(|r| r.status == 200) {
                    failures += 1;
                }
                std::thread::sleep(every);
            }
            failures
        });
        Trickle {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops it; returns how many of its requests failed.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map_or(0, |h| h.join().expect("trickle thread"))
    }
}

#[test]
fn light_traffic_after_a_burst_brings_the_pool_back_to_min_instances() {
    // Issue 11: two requests a second kept every process of a grown pool alive forever.
    let ferry = Ferry::start_testapp(
        &[
            "--max-pool-size",
            "4",
            "--pool-idle-time",
            &POOL_IDLE_TIME_S.to_string(),
            "--max-request-queue-size",
            "0",
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let outcomes = concurrent_gets(ferry.addr(), &vec!["/sleep?ms=300".to_string(); 24]);
    assert!(outcomes
        .iter()
        .all(|o| o.as_ref().is_ok_and(|r| r.status == 200)));
    let grown = ferry.all_pids().len();
    assert!(grown > 2, "the burst grew the pool: {}", ferry.status());

    // 2 requests per second of 20 ms: back to min_instances (1), or one more, within
    // pool_idle_time + 30 s.
    let trickle = Trickle::start(ferry.addr(), "/sleep?ms=20", Duration::from_millis(500));
    let limit = Duration::from_secs(POOL_IDLE_TIME_S + 30);
    let left = wait_for("the pool to shrink under light traffic", limit, || {
        let pids = ferry.all_pids();
        (pids.len() <= 2).then_some(pids)
    });
    assert_eq!(trickle.stop(), 0, "the light traffic was served throughout");
    assert!(!left.is_empty());
    assert!(ferry.total("idle_shutdowns") >= (grown - 2) as u64);
}
