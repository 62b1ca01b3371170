//! How the pool follows the traffic: routing that concentrates light load and spreads heavy
//! load, spawning for demand rather than for every momentary queue, and shrinking back once
//! the load drops. Every input goes through `common::Pool`, which checks the invariants.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{PoolConfig, ProcessId, ProcessState};

fn idle_pool(max_pool_size: usize, pool_idle_time_s: u64) -> PoolConfig {
    PoolConfig {
        max_pool_size,
        pool_idle_time: secs(pool_idle_time_s),
        ..PoolConfig::default()
    }
}

/// Grows a pool of `max` processes (min 1, concurrency 1) with a burst of queued requests,
/// makes every spawn ready, lets the burst finish and returns the ready processes. The
/// clock ends at about 2 s.
fn grown_pool(max: usize, pool_idle_time_s: u64) -> (Pool, Vec<ProcessId>) {
    let (mut pool, first) = Pool::started(idle_pool(max, pool_idle_time_s), vec![group(1, 1)]);
    let mut spawned = Vec::new();
    let burst = 50;
    for request in 0..burst {
        pool.now = at(ms(100 + request));
        spawned.extend(spawns(&pool.arrive(0, request)));
    }
    // Whatever the spawn rule, a queue of 49 behind one process keeps asking.
    for _ in 0..20 {
        if first.len() + spawned.len() == max {
            break;
        }
        pool.now = pool.now + ms(100);
        spawned.extend(spawns(&pool.input(ferry_engine::Input::Tick)));
    }
    pool.now = pool.now + ms(500);
    for process in &spawned {
        pool.ready(*process);
    }
    for request in 0..burst {
        pool.now = pool.now + ms(10);
        pool.finish(request);
    }
    let mut all = first;
    all.extend(spawned);
    assert_eq!(
        pool.count_in(0, ProcessState::Ready),
        max,
        "the burst grew the pool"
    );
    (pool, all)
}

/// Sends one request every `every` of `service` length until `until`, numbered from
/// `first_request`; returns the processes that served them, in order.
fn steady_traffic(
    pool: &mut Pool,
    first_request: u64,
    every: core::time::Duration,
    service: core::time::Duration,
    until: ferry_engine::Instant,
) -> Vec<ProcessId> {
    let mut served = Vec::new();
    let mut request = first_request;
    while pool.now + every < until {
        let arrive_at = pool.now + every;
        pool.run_until(arrive_at);
        let commands = pool.arrive(0, request);
        if let Some(process) = forward_of(&commands, request) {
            served.push(process);
        }
        let done_at = pool.now + service;
        pool.run_until(done_at);
        pool.finish(request);
        request += 1;
    }
    served
}

mod routing {
    use super::*;

    #[test]
    fn light_traffic_after_a_burst_lets_the_pool_shrink_to_min_instances() {
        // Issue 11: 2 req/s after a burst kept all six processes alive forever, because ties
        // went to the least recently used process and none was ever idle for long.
        let (mut pool, _) = grown_pool(6, 60);
        let until = pool.now + secs(120);
        steady_traffic(&mut pool, 1000, ms(500), ms(20), until);
        let ready = pool.count_in(0, ProcessState::Ready);
        assert!(
            ready <= 2,
            "{ready} ready after 120 s of 2 req/s, idle time 60 s"
        );
    }

    #[test]
    fn ties_go_to_the_most_recently_used_process() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(3, 1)]);
        let served = steady_traffic(&mut pool, 1, ms(100), ms(10), at(secs(2)));
        // The first request picks any idle process; every later one goes to the process that
        // was used last, so the other two stay idle.
        assert!(served.len() > 10);
        assert!(served.iter().all(|p| *p == served[0]), "{served:?}");
        assert!(ps.contains(&served[0]));
    }
}
