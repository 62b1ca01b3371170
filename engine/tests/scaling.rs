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

/// One process (min 1, concurrency 1) whose spawn took `spawn_ms`, ready at that instant.
fn one_process(spawn_ms: u64) -> (Pool, ProcessId) {
    let (mut pool, commands) = Pool::start(idle_pool(6, 300), vec![group(1, 1)]);
    let first = spawns(&commands)[0];
    pool.now = at(ms(spawn_ms));
    pool.ready(first);
    (pool, first)
}

mod spawning {
    use super::*;
    use ferry_engine::{GroupConfig, Input, RequestId};

    #[test]
    fn a_queue_shorter_than_a_spawn_does_not_spawn() {
        // Issue 11: two overlapping requests spawned a process although the busy one was
        // free again long before a new one could start.
        let (mut pool, first) = one_process(1000);
        pool.now = at(ms(2000));
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(first));
        let queued = pool.arrive(0, 2);
        assert!(spawns(&queued).is_empty(), "{queued:?}");
        let timed = pool.run_until(at(ms(2050)));
        assert!(spawns(&untimed(&timed)).is_empty(), "{timed:?}");
        assert_eq!(forward_of(&pool.finish(1), 2), Some(first));
        let timed = pool.run_until(at(secs(60)));
        assert!(spawns(&untimed(&timed)).is_empty(), "{timed:?}");
    }

    #[test]
    fn a_request_waiting_as_long_as_a_spawn_takes_spawns() {
        let (mut pool, first) = one_process(1000);
        pool.now = at(ms(2000));
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(first));
        pool.arrive(0, 2);
        let timed = pool.run_until(at(ms(3100)));
        let spawned: Vec<_> = timed
            .iter()
            .filter(|(_, c)| matches!(c, ferry_engine::Command::Spawn { .. }))
            .map(|(when, _)| *when)
            .collect();
        assert_eq!(spawned.len(), 1, "{timed:?}");
        // Once it has waited the measured spawn time (1 s), not before.
        assert!(spawned[0] >= at(ms(3000)), "{spawned:?}");
    }

    #[test]
    fn a_burst_grows_the_pool_to_the_max_within_one_spawn_time() {
        let (mut pool, _) = one_process(500);
        pool.now = at(secs(2));
        let mut spawned = Vec::new();
        for request in 0..200 {
            spawned.extend(spawns(&pool.arrive(0, request)));
        }
        let timed = pool.run_until(at(ms(2500)));
        spawned.extend(spawns(&untimed(&timed)));
        assert_eq!(spawned.len(), 5, "five more, to max_pool_size 6: {timed:?}");
    }

    /// `clients` clients in a closed loop (each asks again as soon as it is answered) on one
    /// process of a pool of six whose requests take `service`, after 20 requests one at a
    /// time made the service time known; spawns are still starting at `window` after the
    /// burst began. Returns the processes spawned within `window`.
    fn closed_loop_spawns(
        clients: u64,
        service: core::time::Duration,
        window: core::time::Duration,
    ) -> usize {
        let (mut pool, first) = one_process(500);
        for request in 0..20 {
            pool.now = at(ms(1000 + 100 * request));
            assert_eq!(forward_of(&pool.arrive(0, request), request), Some(first));
            pool.now = pool.now + service;
            pool.finish(request);
        }
        let burst_at = at(secs(4));
        pool.run_until(burst_at);
        let mut spawned = Vec::new();
        let mut next = 100;
        let mut serving = None;
        for client in 0..clients {
            pool.now = burst_at + core::time::Duration::from_micros(5 * client);
            let commands = pool.arrive(0, next);
            spawned.extend(spawns(&commands));
            if let Some((request, _)) = forwards(&commands).first() {
                serving = Some(*request);
            }
            next += 1;
        }
        // The spawned processes are still starting: only the first one serves.
        while pool.now < burst_at + window {
            let request = serving.take().expect("the process is busy");
            pool.now = pool.now + service;
            let mut commands = pool.finish(request);
            commands.extend(pool.arrive(0, next));
            next += 1;
            spawned.extend(spawns(&commands));
            serving = forwards(&commands).first().map(|(request, _)| *request);
        }
        spawned.len()
    }

    #[test]
    fn a_burst_of_fast_requests_grows_the_pool_to_the_max_within_one_spawn_time() {
        // Issue 11: `wrk -c200` on one process whose requests take 50 us and whose spawns take
        // 500 ms. The queue of 199 drains in 10 ms, so the work rule rightly waits, and each
        // answered client asks again at once (a closed loop: the arrival rate is the
        // process's own pace). Only the number of clients shows the demand; the pool reached
        // its max 776-1215 ms after the burst began in the real server, against the 524-540 ms
        // of one startup it took before the demand rule.
        let spawned = closed_loop_spawns(200, core::time::Duration::from_micros(50), ms(50));
        assert_eq!(
            spawned, 5,
            "within a tenth of a spawn time, five more, to max_pool_size 6"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any closed loop on one process: once its backlog has turned over (well within
        /// 50 ms here), the clients beyond the in-service one ask for a process per 8 (the
        /// sustained margin), one more than the ready one once they pass it, at most 6.
        #[test]
        fn a_closed_loop_asks_for_its_clients_over_the_sustained_margin(
            clients in 2u64..300,
            service_us in 20u64..200,
        ) {
            let service = core::time::Duration::from_micros(service_us);
            let spawned = closed_loop_spawns(clients, service, ms(50));
            let waiting = (clients - 1) as f64 / 8.0;
            let mut needed = (waiting as usize).max(1);
            if waiting > 1.0 {
                needed = needed.max(2);
            }
            proptest::prop_assert_eq!(spawned, needed.min(6) - 1);
        }
    }

    #[test]
    fn offered_load_beyond_the_target_grows_the_pool_without_a_queue() {
        // Unlimited concurrency: nothing ever queues, yet 20 sessions of 1 s at a time on
        // a process whose target is 4 need more processes.
        let generic = GroupConfig {
            concurrency: 0,
            target_concurrency: 4,
            ..group(1, 0)
        };
        let (mut pool, _) = Pool::started(idle_pool(6, 300), vec![generic]);
        let mut spawned = Vec::new();
        let mut next = 0;
        for tick in 0..100u64 {
            pool.now = at(ms(100 * tick));
            for _ in 0..2 {
                spawned.extend(spawns(&pool.arrive(0, next)));
                next += 1;
            }
            if next > 20 {
                spawned.extend(spawns(&pool.finish(next - 21)));
                spawned.extend(spawns(&pool.finish(next - 20)));
            }
        }
        assert_eq!(pool.engine.queue_len(ferry_engine::GroupId(0)), 0);
        // 20 at once need 20 / (4 x 0.8) = 7 (capped at 6); the arrival rate averages over
        // 10 s, so by then the pool has grown by at least three.
        assert!(spawned.len() >= 3, "{spawned:?}");
    }

    /// Spawns from now until `until`, each served request taking 20 ms, every spawn made
    /// ready `spawn` after it; the requests `requests` arrive at the given instants.
    fn spawns_serving(
        pool: &mut Pool,
        requests: &[(u64, ferry_engine::Instant)],
        spawn: core::time::Duration,
        until: ferry_engine::Instant,
    ) -> Vec<ProcessId> {
        let mut spawned: Vec<(ProcessId, ferry_engine::Instant)> = Vec::new();
        let mut serving: Vec<(u64, ferry_engine::Instant)> = Vec::new();
        let mut arrivals = requests.to_vec();
        let mut every = Vec::new();
        loop {
            // The next of: an arrival, a spawn becoming ready, a request finishing.
            let next = [
                arrivals.first().map(|a| a.1),
                spawned.iter().map(|s| s.1).min(),
                serving.iter().map(|s| s.1).min(),
            ];
            let Some(when) = next.into_iter().flatten().min().filter(|w| *w <= until) else {
                break;
            };
            let mut commands = untimed(&pool.run_until(when));
            if arrivals.first().is_some_and(|a| a.1 == when) {
                let (request, _) = arrivals.remove(0);
                commands.extend(pool.arrive(0, request));
            } else if let Some(i) = spawned.iter().position(|s| s.1 == when) {
                let (process, _) = spawned.remove(i);
                commands.extend(pool.ready(process));
            } else if let Some(i) = serving.iter().position(|s| s.1 == when) {
                let (request, _) = serving.remove(i);
                commands.extend(pool.finish(request));
            }
            for process in spawns(&commands) {
                spawned.push((process, pool.now + spawn));
                every.push(process);
            }
            for (request, _) in forwards(&commands) {
                serving.push((request, pool.now + ms(20)));
            }
        }
        every.extend(spawns(&untimed(&pool.run_until(until))));
        every
    }

    #[test]
    fn a_pool_of_one_replacing_its_process_spawns_only_the_replacement() {
        // Found by the swarm's shrink check: with `max_requests`, the requests that queued
        // while a pool of one spawned its process's replacement had waited a spawn time
        // once it was ready, which read as a wrong estimate and spawned a process for each
        // of them (kept for pool_idle_time, and again at every replacement).
        let replaced = GroupConfig {
            max_requests: 2,
            ..group(1, 1)
        };
        let (mut pool, commands) = Pool::start(idle_pool(6, 300), vec![replaced]);
        let first = spawns(&commands)[0];
        pool.now = at(secs(1));
        pool.ready(first);
        // Two requests use the process up; three more queue behind its replacement's 1 s spawn.
        let arrivals: Vec<_> = [2000, 2500, 2600, 2900, 3200]
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u64, at(ms(*t))))
            .collect();
        let spawned = spawns_serving(&mut pool, &arrivals, secs(1), at(secs(30)));
        // A replacement for each process used up (the third serves the fifth request).
        assert_eq!(spawned.len(), 2, "{spawned:?}");
    }

    #[test]
    fn an_empty_pool_with_a_known_service_time_spawns_for_the_work_not_per_request() {
        // min_instances 0: the pool went idle to zero; a few short requests then queue behind
        // the one spawn, which serves them all well within a spawn time.
        let (mut pool, first) = Pool::started(idle_pool(6, 5), vec![group(0, 1)]);
        assert!(first.is_empty());
        let arrivals = [(0, at(secs(1)))];
        let spawned = spawns_serving(&mut pool, &arrivals, secs(1), at(secs(20)));
        assert_eq!(spawned.len(), 1, "{spawned:?}");
        assert_eq!(
            pool.count_in(0, ProcessState::Ready),
            0,
            "idle to zero again"
        );
        let arrivals: Vec<_> = (1..5).map(|i| (i, at(ms(20_000 + 100 * i)))).collect();
        let spawned = spawns_serving(&mut pool, &arrivals, secs(1), at(secs(23)));
        assert_eq!(
            spawned.len(),
            1,
            "one spawn for 4 requests of 20 ms: {spawned:?}"
        );
    }

    /// A process with `tunnels` long-lived sessions (upgraded or not), then a minute.
    fn tunnels(upgrade: bool) -> usize {
        let generic = GroupConfig {
            concurrency: 0,
            target_concurrency: 2,
            ..group(1, 0)
        };
        let (mut pool, _) = Pool::started(idle_pool(6, 300), vec![generic]);
        let mut spawned = Vec::new();
        for request in 0..10 {
            pool.now = at(ms(10 * request + 10));
            spawned.extend(spawns(&pool.arrive(0, request)));
            if upgrade {
                pool.now = at(ms(10 * request + 15));
                spawned.extend(spawns(&pool.input(Input::SessionUpgraded {
                    request: RequestId(request),
                })));
            }
        }
        spawned.extend(spawns(&untimed(&pool.run_until(at(secs(60))))));
        spawned.len()
    }

    #[test]
    fn upgraded_sessions_do_not_make_a_pool_look_full() {
        assert_eq!(
            tunnels(true),
            0,
            "ten idle WebSockets on one process spawn nothing"
        );
        assert!(tunnels(false) > 0, "ten long requests at target 2 do spawn");
    }
}
