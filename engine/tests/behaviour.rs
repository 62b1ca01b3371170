//! The engine's behaviour, one test per rule, grouped by topic. Read as the spec of the pool.
//!
//! Every input goes through `common::Pool`, which also checks the invariants after it.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{
    Command, Config, ConfigError, Engine, FailReason, GroupConfig, GroupId, Input, Instant,
    KillMode, KillReason, PoolConfig, ProcessId, ProcessState, RejectReason, RequestId,
};

mod start_and_config {
    use super::*;

    #[test]
    fn min_instances_are_spawned_at_start_all_at_once() {
        let groups = vec![
            GroupConfig {
                max_spawn_concurrency: 1,
                ..group(3, 1)
            },
            group(2, 1),
            group(0, 1),
        ];
        let (_, commands) = Pool::start(pool_of(6), groups);
        // The minimum is what the user asked to exist: not held back by spawn concurrency.
        assert_eq!(spawns_in(&commands, 0).len(), 3);
        assert_eq!(spawns_in(&commands, 1).len(), 2);
        assert_eq!(spawns_in(&commands, 2).len(), 0);
        assert_eq!(commands.len(), 5);
    }

    #[test]
    fn nothing_is_routed_to_a_process_still_spawning() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let p1 = spawns(&commands)[0];
        let arrived = pool.arrive(0, 1);
        assert!(forwards(&arrived).is_empty());
        // The spawning process covers the queued request: no second spawn.
        assert!(spawns(&arrived).is_empty());
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
        assert_eq!(forwards(&pool.ready(p1)), vec![(1, p1)]);
    }

    fn refused(pool: PoolConfig, groups: Vec<GroupConfig>) -> ConfigError {
        let config = Config { pool, groups };
        let error = config.validate().expect_err("config must be refused");
        assert_eq!(
            Engine::new(config, Instant::ZERO).err(),
            Some(error.clone())
        );
        error
    }

    #[test]
    fn config_without_groups_is_refused() {
        assert_eq!(refused(pool_of(6), vec![]), ConfigError::NoGroups);
    }

    #[test]
    fn config_with_zero_max_pool_size_is_refused() {
        assert_eq!(
            refused(pool_of(0), vec![group(0, 1)]),
            ConfigError::ZeroMaxPoolSize
        );
    }

    #[test]
    fn config_with_min_instances_above_max_pool_size_is_refused() {
        let groups = vec![GroupConfig {
            name: "app".into(),
            ..group(7, 1)
        }];
        let error = refused(pool_of(6), groups);
        assert_eq!(
            error,
            ConfigError::MinAboveMax {
                group: "app".into(),
                min_instances: 7,
                max_pool_size: 6
            }
        );
        assert_eq!(
            error.to_string(),
            "min_instances (7) of group 'app' is above max_pool_size (6)"
        );
    }

    #[test]
    fn config_whose_min_instances_add_up_above_max_pool_size_is_refused() {
        assert_eq!(
            refused(pool_of(6), vec![group(4, 1), group(3, 1)]),
            ConfigError::MinSumAboveMax {
                min_instances_total: 7,
                max_pool_size: 6
            }
        );
    }

    #[test]
    fn config_with_zero_spawn_concurrency_is_refused() {
        let groups = vec![GroupConfig {
            name: "app".into(),
            max_spawn_concurrency: 0,
            ..group(1, 1)
        }];
        assert_eq!(
            refused(pool_of(6), groups),
            ConfigError::ZeroSpawnConcurrency {
                group: "app".into()
            }
        );
    }

    #[test]
    fn config_with_backoff_max_below_initial_is_refused() {
        let pool = PoolConfig {
            backoff_initial: secs(10),
            backoff_max: secs(5),
            ..pool_of(6)
        };
        assert_eq!(
            refused(pool, vec![group(1, 1)]),
            ConfigError::BackoffMaxBelowInitial
        );
    }

    #[test]
    fn min_instances_adding_up_to_exactly_max_pool_size_is_accepted() {
        let config = Config {
            pool: pool_of(6),
            groups: vec![group(3, 1), group(3, 1)],
        };
        assert_eq!(config.validate(), Ok(()));
    }
}

mod routing {
    use super::*;

    #[test]
    fn request_goes_to_the_ready_process_with_the_fewest_sessions() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 4)]);
        let (p1, p2) = (ps[0], ps[1]);
        pool.now = at(secs(1));
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(p1));
        pool.now = at(secs(2));
        assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(p2));
        pool.now = at(secs(3));
        pool.finish(1);
        // p1 has no session, p2 has one.
        pool.now = at(secs(4));
        assert_eq!(forward_of(&pool.arrive(0, 3), 3), Some(p1));
    }

    #[test]
    fn fewest_sessions_wins_over_most_recently_used() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 4)]);
        let (p1, p2) = (ps[0], ps[1]);
        pool.now = at(secs(1));
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(p1));
        pool.now = at(secs(2));
        assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(p2));
        // One session each: the tie goes to p2, used last.
        pool.now = at(secs(3));
        assert_eq!(forward_of(&pool.arrive(0, 3), 3), Some(p2));
        // p2 is the most recently used but has two sessions; p1 has one.
        pool.now = at(secs(4));
        assert_eq!(forward_of(&pool.arrive(0, 4), 4), Some(p1));
    }

    #[test]
    fn ties_go_to_the_most_recently_used_process() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        let (p1, p2) = (ps[0], ps[1]);
        pool.now = at(secs(1));
        // Both became ready at the same instant: the older id wins the tie.
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(p1));
        pool.now = at(secs(2));
        pool.finish(1);
        // Both idle; p1 was used last, so it takes the next request and p2 stays idle.
        pool.now = at(secs(3));
        assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(p1));
        pool.now = at(secs(4));
        pool.finish(2);
        pool.now = at(secs(5));
        assert_eq!(forward_of(&pool.arrive(0, 3), 3), Some(p1));
        // While p1 is busy, the next request goes to the idle p2.
        assert_eq!(forward_of(&pool.arrive(0, 4), 4), Some(p2));
    }

    #[test]
    fn equal_load_spreads_evenly_over_the_processes() {
        // Heavy load: every round keeps all six processes busy at once, as a benchmark with
        // more connections than processes does.
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(6, 1)]);
        let mut served = std::collections::BTreeMap::new();
        for round in 0..10u64 {
            pool.now = at(ms(10 * round + 1));
            for request in round * 6..round * 6 + 6 {
                let process = forward_of(&pool.arrive(0, request), request).expect("forwarded");
                *served.entry(process).or_insert(0) += 1;
            }
            pool.now = at(ms(10 * round + 5));
            for request in round * 6..round * 6 + 6 {
                pool.finish(request);
            }
        }
        assert_eq!(served.keys().copied().collect::<Vec<_>>(), ps);
        assert!(served.values().all(|count| *count == 10), "{served:?}");
    }

    #[test]
    fn unlimited_concurrency_never_queues_while_a_process_is_ready() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 0)]);
        for request in 0..100 {
            let commands = pool.arrive(0, request);
            assert_eq!(commands, vec![forward(request, ps[0])]);
        }
    }

    fn forward(request: u64, process: ProcessId) -> Command {
        Command::Forward {
            request: RequestId(request),
            process,
        }
    }
}

mod queueing {
    use super::*;

    /// One process taking one request at a time, in a pool that cannot grow.
    fn single_process(max_request_queue_size: usize) -> (Pool, ProcessId) {
        let groups = vec![GroupConfig {
            max_request_queue_size,
            ..group(1, 1)
        }];
        let (pool, ps) = Pool::started(pool_of(1), groups);
        (pool, ps[0])
    }

    #[test]
    fn requests_queue_when_every_process_is_busy() {
        let (mut pool, p1) = single_process(100);
        assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(p1));
        assert_eq!(pool.arrive(0, 2), vec![]);
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
    }

    #[test]
    fn queued_requests_are_served_first_in_first_out() {
        let (mut pool, p1) = single_process(100);
        pool.arrive(0, 1);
        for request in 2..=5 {
            pool.arrive(0, request);
        }
        for request in 1..5 {
            assert_eq!(forwards(&pool.finish(request)), vec![(request + 1, p1)]);
        }
    }

    #[test]
    fn request_beyond_max_request_queue_size_is_rejected_queue_full() {
        let (mut pool, _) = single_process(2);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        pool.arrive(0, 3);
        assert_eq!(
            pool.arrive(0, 4),
            vec![Command::Reject {
                request: RequestId(4),
                reason: RejectReason::QueueFull
            }]
        );
        assert_eq!(pool.engine.queue_len(GroupId(0)), 2);
    }

    #[test]
    fn zero_max_request_queue_size_means_unlimited() {
        let (mut pool, _) = single_process(0);
        pool.arrive(0, 0);
        for request in 1..=1000 {
            assert_eq!(pool.arrive(0, request), vec![]);
        }
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1000);
    }

    #[test]
    fn client_gone_while_queued_frees_the_queue_slot_at_once() {
        let (mut pool, p1) = single_process(1);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        assert_eq!(rejects(&pool.arrive(0, 3)).len(), 1);
        assert_eq!(pool.client_gone(2), vec![]);
        assert_eq!(pool.arrive(0, 4), vec![], "the slot is free again");
        // The cancelled request never reaches a process.
        assert_eq!(forwards(&pool.finish(1)), vec![(4, p1)]);
        assert_eq!(pool.engine.totals().cancelled, 1);
    }

    #[test]
    fn client_gone_while_in_flight_ends_the_session() {
        let (mut pool, p1) = single_process(100);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        // The session is free at once: the queued request takes it.
        assert_eq!(forwards(&pool.client_gone(1)), vec![(2, p1)]);
        assert_eq!(pool.engine.totals().cancelled, 1);
        // The app's late answer to the cancelled request changes nothing.
        assert_eq!(pool.finish(1), vec![]);
        assert_eq!(pool.engine.busy_sessions(), 1);
    }

    #[test]
    fn inputs_about_requests_that_ended_are_ignored() {
        let (mut pool, _) = single_process(1);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        pool.arrive(0, 3); // rejected
        for request in [3, 42] {
            assert_eq!(pool.finish(request), vec![]);
            assert_eq!(pool.client_gone(request), vec![]);
        }
        // A queued request cannot finish: it never reached a process.
        assert_eq!(pool.finish(2), vec![]);
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
    }
}

mod scaling_up {
    use super::*;

    #[test]
    fn waiting_requests_spawn_processes() {
        let (mut pool, _) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let commands = pool.arrive(0, 2);
        assert_eq!(spawns(&commands).len(), 1);
        let p2 = spawns(&commands)[0];
        assert_eq!(forwards(&pool.ready(p2)), vec![(2, p2)]);
    }

    #[test]
    fn a_group_spawns_several_processes_at_once_up_to_max_spawn_concurrency() {
        let groups = vec![GroupConfig {
            max_spawn_concurrency: 3,
            ..group(1, 1)
        }];
        let (mut pool, _) = Pool::started(pool_of(10), groups);
        pool.arrive(0, 1);
        let mut spawned = Vec::new();
        for request in 2..=7 {
            spawned.extend(spawns(&pool.arrive(0, request)));
        }
        assert_eq!(
            spawned.len(),
            3,
            "six waiting requests, three spawns at a time"
        );
        assert_eq!(pool.count_in(0, ProcessState::Spawning), 3);
        // One is ready and takes a request: another spawn may start.
        let commands = pool.ready(spawned[0]);
        assert_eq!(forwards(&commands), vec![(2, spawned[0])]);
        assert_eq!(spawns(&commands).len(), 1);
        assert_eq!(pool.count_in(0, ProcessState::Spawning), 3);
    }

    #[test]
    fn spawns_for_the_queue_count_the_processes_already_spawning() {
        let (mut pool, _) = Pool::started(pool_of(10), vec![group(1, 2)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        // Concurrency 2: one new process covers two waiting requests.
        assert_eq!(spawns(&pool.arrive(0, 3)).len(), 1);
        assert_eq!(spawns(&pool.arrive(0, 4)).len(), 0);
        assert_eq!(spawns(&pool.arrive(0, 5)).len(), 1);
    }

    #[test]
    fn spawns_never_exceed_max_pool_size() {
        let (mut pool, _) = Pool::started(pool_of(3), vec![group(1, 1)]);
        let mut spawned = Vec::new();
        for request in 1..=20 {
            spawned.extend(spawns(&pool.arrive(0, request)));
        }
        assert_eq!(spawned.len(), 2);
        for process in spawned {
            assert!(spawns(&pool.ready(process)).is_empty());
        }
        assert_eq!(pool.engine.process_count(), 3);
    }

    #[test]
    fn a_full_pool_takes_the_oldest_idle_process_above_min_instances_from_another_group() {
        // Group 0 has four processes, used last in the order p3, p1, p4, p2; group 1 none.
        let (mut pool, ps) = Pool::started(pool_of(4), vec![group(1, 1), group(0, 1)]);
        let p1 = ps[0];
        pool.arrive(0, 1);
        let mut more = Vec::new();
        for request in 2..=4 {
            more.extend(spawns(&pool.arrive(0, request)));
        }
        let (p2, p3, p4) = (more[0], more[1], more[2]);
        for process in [p2, p3, p4] {
            pool.ready(process);
        }
        for (second, request) in [(10, 3), (11, 1), (12, 4), (13, 2)] {
            pool.now = at(secs(second));
            pool.finish(request);
        }
        pool.now = at(secs(20));
        let commands = pool.arrive(1, 10);
        assert_eq!(kills(&commands), vec![(p3, KillMode::Graceful)]);
        assert!(spawns(&commands).is_empty(), "the pool is still full");
        let commands = pool.exited(p3);
        let p5 = spawns_in(&commands, 1)[0];
        assert_eq!(forwards(&pool.ready(p5)), vec![(10, p5)]);
        // The next one comes from p1, the oldest idle one left.
        let commands = pool.arrive(1, 11);
        assert_eq!(kills(&commands), vec![(p1, KillMode::Graceful)]);
    }

    #[test]
    fn a_full_pool_does_not_take_processes_at_min_instances() {
        let (mut pool, _) = Pool::started(pool_of(2), vec![group(2, 1), group(0, 1)]);
        let commands = pool.arrive(1, 1);
        assert_eq!(commands, vec![]);
        assert_eq!(pool.engine.queue_len(GroupId(1)), 1);
    }

    #[test]
    fn a_full_pool_takes_capacity_that_becomes_idle_while_a_group_waits() {
        let (mut pool, _) = Pool::start(pool_of(2), vec![group(0, 1), group(0, 1)]);
        let mut spawned = spawns(&pool.arrive(0, 1));
        spawned.extend(spawns(&pool.arrive(0, 2)));
        for process in &spawned {
            pool.ready(*process);
        }
        // Both of group 0's processes are busy: group 1 has to wait.
        assert_eq!(pool.arrive(1, 3), vec![]);
        pool.now = at(secs(1));
        let commands = pool.finish(1);
        assert_eq!(kills(&commands), vec![(spawned[0], KillMode::Graceful)]);
        let p3 = spawns_in(&pool.exited(spawned[0]), 1)[0];
        assert_eq!(forwards(&pool.ready(p3)), vec![(3, p3)]);
    }

    #[test]
    fn a_full_pool_takes_a_process_that_comes_up_idle_while_a_group_waits() {
        let (mut pool, _) = Pool::start(pool_of(2), vec![group(0, 1), group(0, 1)]);
        let p1 = spawns(&pool.arrive(0, 1))[0];
        pool.ready(p1);
        let p2 = spawns(&pool.arrive(0, 2))[0];
        pool.client_gone(2); // p2 will have nothing to do
        assert_eq!(pool.arrive(1, 3), vec![]);
        assert_eq!(kills(&pool.ready(p2)), vec![(p2, KillMode::Graceful)]);
        assert_eq!(spawns_in(&pool.exited(p2), 1).len(), 1);
    }
}

mod scaling_down {
    use super::*;

    /// `min_instances + 2` ready processes, all last used at instant zero.
    fn idle_pool(min_instances: usize, pool_idle_time_s: u64) -> (Pool, Vec<ProcessId>) {
        let pool = PoolConfig {
            pool_idle_time: secs(pool_idle_time_s),
            ..pool_of(6)
        };
        let (mut pool, mut ps) = Pool::started(pool, vec![group(min_instances, 1)]);
        let requests = 1..=min_instances as u64 + 2;
        let mut spawned = Vec::new();
        for request in requests.clone() {
            spawned.extend(spawns(&pool.arrive(0, request)));
        }
        for process in &spawned {
            pool.ready(*process);
        }
        ps.extend(spawned);
        for request in requests {
            pool.finish(request);
        }
        assert_eq!(pool.count_in(0, ProcessState::Ready), min_instances + 2);
        (pool, ps)
    }

    fn graceful_kills(timed: &[(Instant, Command)]) -> Vec<(Instant, ProcessId)> {
        timed
            .iter()
            .filter_map(|(at, c)| match c {
                Command::Kill {
                    process,
                    mode: KillMode::Graceful,
                    ..
                } => Some((*at, *process)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_idle_process_above_min_instances_is_shut_down_after_pool_idle_time() {
        let (mut pool, ps) = idle_pool(1, 300);
        assert_eq!(
            kills(&untimed(&pool.run_until(at(secs(300) - ms(1))))),
            vec![]
        );
        let kills_at_300 = kills(&untimed(&pool.run_until(at(secs(300)))));
        assert_eq!(kills_at_300.len(), 2);
        assert!(kills_at_300
            .iter()
            .all(|(p, mode)| ps.contains(p) && *mode == KillMode::Graceful));
        assert_eq!(pool.engine.totals().idle_shutdowns, 2);
    }

    #[test]
    fn idle_shutdown_never_goes_below_min_instances() {
        let (mut pool, _) = idle_pool(2, 300);
        let timed = pool.run_until(at(secs(100_000)));
        assert_eq!(graceful_kills(&timed).len(), 2);
        assert_eq!(pool.count_in(0, ProcessState::Ready), 2);
    }

    #[test]
    fn poll_timeout_wakes_the_engine_exactly_at_last_use_plus_pool_idle_time() {
        let pool = PoolConfig {
            pool_idle_time: secs(300),
            ..pool_of(6)
        };
        let (mut pool, commands) = Pool::start(pool, vec![group(0, 1)]);
        assert!(commands.is_empty());
        let p1 = spawns(&pool.arrive(0, 1))[0];
        pool.now = at(secs(1));
        pool.ready(p1);
        pool.now = at(ms(50_500));
        pool.finish(1);
        // A driver that sleeps until each poll_timeout, and never longer.
        let mut wakes = Vec::new();
        let mut killed_at = None;
        while let Some(deadline) = pool.engine.poll_timeout() {
            wakes.push(deadline);
            let commands = pool.at(deadline, Input::Tick);
            if !kills(&commands).is_empty() {
                killed_at = Some(deadline);
                break;
            }
        }
        assert_eq!(killed_at, Some(at(ms(350_500))), "woken at {wakes:?}");
    }

    #[test]
    fn last_use_is_updated_when_a_request_starts_and_when_it_ends() {
        let pool = PoolConfig {
            pool_idle_time: secs(300),
            ..pool_of(6)
        };
        let (mut pool, ps) = Pool::started(pool, vec![group(0, 1)]);
        assert!(ps.is_empty());
        let p1 = spawns(&pool.arrive(0, 1))[0];
        pool.ready(p1);
        pool.finish(1);
        let last_used = |pool: &Pool| pool.status().groups[0].processes[0].last_used;
        pool.now = at(secs(100));
        pool.arrive(0, 2);
        assert_eq!(last_used(&pool), at(secs(100)));
        // Busy far beyond pool_idle_time: a busy process is never idle.
        let timed = pool.run_until(at(secs(1000)));
        assert_eq!(kills(&untimed(&timed)), vec![]);
        pool.finish(2);
        assert_eq!(last_used(&pool), at(secs(1000)));
        let timed = pool.run_until(at(secs(2000)));
        assert_eq!(graceful_kills(&timed), vec![(at(secs(1300)), p1)]);
    }

    #[test]
    fn zero_pool_idle_time_never_shuts_processes_down() {
        let (mut pool, _) = idle_pool(1, 0);
        let timed = pool.run_until(at(secs(10_000_000)));
        assert_eq!(kills(&untimed(&timed)), vec![]);
        assert_eq!(pool.engine.poll_timeout(), None);
    }
}

mod crashes {
    use super::*;

    #[test]
    fn a_crash_fails_the_in_flight_requests() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 2)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let commands = pool.exited(ps[0]);
        assert_eq!(fails(&commands), vec![1, 2]);
        assert!(commands.contains(&Command::Fail {
            request: RequestId(1),
            process: ps[0],
            reason: FailReason::Crashed {
                description: "exit status 1".into()
            }
        }));
        assert_eq!(pool.engine.totals().failed, 2);
        assert_eq!(pool.engine.totals().crashes, 1);
    }

    #[test]
    fn a_crash_leaves_queued_requests_queued_for_the_replacement() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let commands = pool.exited(ps[0]);
        assert_eq!(fails(&commands), vec![1]);
        assert_eq!(rejects(&commands), vec![]);
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
        let p2 = spawns(&commands)[0];
        assert_eq!(forwards(&pool.ready(p2)), vec![(2, p2)]);
    }

    #[test]
    fn a_crashed_process_is_replaced_when_below_min_instances() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        assert_eq!(spawns(&pool.exited(ps[1])).len(), 1);
    }

    #[test]
    fn a_crashed_process_is_replaced_when_requests_wait() {
        let (mut pool, _) = Pool::start(pool_of(1), vec![group(0, 1)]);
        let p1 = spawns(&pool.arrive(0, 1))[0];
        pool.ready(p1);
        pool.arrive(0, 2);
        assert_eq!(spawns(&pool.exited(p1)).len(), 1);
    }

    #[test]
    fn a_crashed_process_above_min_instances_with_nothing_waiting_is_not_replaced() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let p2 = spawns(&pool.arrive(0, 2))[0];
        pool.ready(p2);
        pool.finish(2);
        assert_eq!(spawns(&pool.exited(p2)), vec![]);
        assert_eq!(pool.states(0), vec![(ps[0], ProcessState::Ready)]);
    }
}

mod refused_connections {
    use super::*;

    #[test]
    fn a_request_refused_by_its_process_goes_to_another_and_the_process_is_stopped() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        let first = forward_of(&pool.arrive(0, 1), 1).unwrap();
        let other = if first == ps[0] { ps[1] } else { ps[0] };
        let commands = pool.input(Input::ProcessRefused {
            request: RequestId(1),
        });
        assert_eq!(
            forwards(&commands),
            vec![(1, other)],
            "sent again, elsewhere"
        );
        assert_eq!(kills(&commands), vec![(first, KillMode::Graceful)]);
        assert_eq!(fails(&commands), vec![]);
        assert_eq!(pool.engine.totals().failed, 0);
        assert_eq!(spawns(&commands).len(), 1, "replaced to keep min_instances");
    }

    #[test]
    fn a_refused_request_waits_at_the_front_of_the_queue_when_no_process_is_free() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        pool.input(Input::ProcessRefused {
            request: RequestId(1),
        });
        assert_eq!(pool.engine.queue_len(GroupId(0)), 2);
        let commands = pool.exited(ps[0]);
        let p2 = spawns(&commands)[0];
        assert_eq!(
            forwards(&pool.ready(p2)),
            vec![(1, p2)],
            "first in line again"
        );
    }
}

mod backoff {
    use super::*;

    /// Every spawn fails at once; returns when each spawn was asked for, up to `until_s`.
    fn spawn_instants_while_failing(min_instances: usize, until_s: u64) -> Vec<u64> {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(min_instances, 1)]);
        let mut pending = spawns(&commands);
        let mut instants = vec![0; pending.len()];
        loop {
            while let Some(process) = pending.pop() {
                let more = spawns(&pool.spawn_failed(process, "exec failed"));
                instants.extend(more.iter().map(|_| pool.now.as_nanos() / 1_000_000_000));
                pending.extend(more);
            }
            match pool.engine.poll_timeout() {
                Some(deadline) if deadline <= at(secs(until_s)) => {
                    let more = spawns(&pool.at(deadline, Input::Tick));
                    instants.extend(more.iter().map(|_| pool.now.as_nanos() / 1_000_000_000));
                    pending.extend(more);
                }
                _ => return instants,
            }
        }
    }

    #[test]
    fn failed_spawns_are_retried_at_once_then_after_one_second_doubling_up_to_a_minute() {
        assert_eq!(
            spawn_instants_while_failing(1, 300),
            vec![0, 0, 1, 3, 7, 15, 31, 63, 123, 183, 243]
        );
    }

    #[test]
    fn failing_spawns_do_not_storm_under_load() {
        let groups = vec![GroupConfig {
            max_spawn_concurrency: 3,
            ..group(0, 1)
        }];
        let (mut pool, _) = Pool::start(pool_of(6), groups);
        // Ten requests a second for a minute; every spawn fails 100 ms after it was asked for.
        let (mut spawned, mut failing) = (0, Vec::new());
        for request in 0..600 {
            pool.now = at(ms(100 * request));
            let mut commands = Vec::new();
            for process in core::mem::take(&mut failing) {
                commands.extend(pool.spawn_failed(process, "exec failed"));
            }
            commands.extend(pool.arrive(0, request));
            failing = spawns(&commands);
            spawned += failing.len();
        }
        // One at first, one retry at once, then one after each pause: 1, 2, 4, 8, 16, 32 s.
        assert!(spawned <= 8, "{spawned} spawns in a minute");
        assert!(pool.engine.totals().rejected >= 590);
    }

    #[test]
    fn requests_are_rejected_spawn_failing_with_the_last_error_while_no_process_can_serve() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let p1 = spawns(&commands)[0];
        let p2 = spawns(&pool.spawn_failed(p1, "exec failed: first"))[0];
        assert_eq!(
            spawns(&pool.spawn_failed(p2, "exec failed: second")),
            vec![]
        );
        assert_eq!(
            pool.arrive(0, 1),
            vec![Command::Reject {
                request: RequestId(1),
                reason: RejectReason::SpawnFailing {
                    error: "exec failed: second".into()
                }
            }]
        );
    }

    #[test]
    fn queued_requests_are_rejected_spawn_failing_when_backoff_starts_with_no_process() {
        let (mut pool, _) = Pool::start(pool_of(6), vec![group(0, 1)]);
        let p1 = spawns(&pool.arrive(0, 1))[0];
        let p2 = spawns(&pool.spawn_failed(p1, "boom"))[0];
        assert_eq!(
            pool.engine.queue_len(GroupId(0)),
            1,
            "a first failure is retried"
        );
        let commands = pool.spawn_failed(p2, "boom again");
        assert_eq!(
            rejects(&commands),
            vec![(
                1,
                RejectReason::SpawnFailing {
                    error: "boom again".into()
                }
            )]
        );
    }

    #[test]
    fn requests_wait_during_backoff_while_a_process_still_serves() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let p2 = spawns(&pool.arrive(0, 2))[0];
        let p3 = spawns(&pool.spawn_failed(p2, "boom"))[0];
        assert_eq!(spawns(&pool.spawn_failed(p3, "boom")), vec![]);
        assert_eq!(pool.arrive(0, 3), vec![], "queued behind the busy process");
        assert_eq!(forwards(&pool.finish(1)), vec![(2, ps[0])]);
    }

    #[test]
    fn a_crash_of_a_process_that_became_ready_is_replaced_at_once_however_young() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let mut process = ps[0];
        // Up for a second each: young, but each one proved that the app starts.
        for second in 1..=5 {
            pool.now = at(secs(second));
            let replacement = spawns(&pool.exited(process));
            assert_eq!(replacement.len(), 1, "crash {second} is replaced at once");
            assert_eq!(pool.status().groups[0].backoff_until, None);
            pool.ready(replacement[0]);
            process = replacement[0];
        }
        assert_eq!(pool.engine.totals().crashes, 5);
        assert_eq!(pool.engine.totals().spawn_failures, 0);
    }

    #[test]
    fn requests_wait_for_the_replacement_of_a_crashed_process_not_for_a_backoff() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.now = at(secs(1));
        let p2 = spawns(&pool.exited(ps[0]))[0];
        pool.ready(p2);
        pool.now = at(secs(2));
        pool.arrive(0, 1);
        let commands = pool.exited(p2);
        assert_eq!(fails(&commands), vec![1], "the request in flight fails");
        let p3 = spawns(&commands);
        assert_eq!(
            p3.len(),
            1,
            "the second early crash is replaced at once too"
        );
        assert_eq!(pool.arrive(0, 2), vec![], "queued for the replacement");
        assert_eq!(forwards(&pool.ready(p3[0])), vec![(2, p3[0])]);
    }

    #[test]
    fn a_ready_process_ends_the_streak_of_start_failures() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.now = at(secs(1));
        let p2 = spawns(&pool.exited(ps[0]))[0];
        let p3 = spawns(&pool.spawn_failed(p2, "boom"))[0];
        assert_eq!(spawns(&pool.spawn_failed(p3, "boom")), vec![], "backs off");
        let p4 = spawns(&untimed(&pool.run_until(at(secs(2)))))[0];
        pool.ready(p4);
        // A second after it became ready, the next failure is the first of a new streak.
        pool.now = at(secs(3));
        let p5 = spawns(&pool.exited(p4))[0];
        assert_eq!(
            spawns(&pool.spawn_failed(p5, "boom")).len(),
            1,
            "retried at once"
        );
    }

    #[test]
    fn a_crash_while_starts_fail_waits_for_the_backoff_like_any_spawn() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        // p1 stays up while the other slot keeps failing: retried at once, then at 1 and 3 s.
        let crashed = spawns(&pool.exited(ps[1]))[0];
        let mut process = spawns(&pool.spawn_failed(crashed, "boom"))[0];
        for retry_s in [1, 3] {
            assert_eq!(spawns(&pool.spawn_failed(process, "boom")), vec![]);
            process = spawns(&untimed(&pool.run_until(at(secs(retry_s)))))[0];
        }
        assert_eq!(spawns(&pool.spawn_failed(process, "boom")), vec![]);
        assert_eq!(pool.status().groups[0].backoff_until, Some(at(secs(7))));
        pool.now = at(secs(4));
        // The latest start failed: a spawn now would most likely fail too.
        assert_eq!(spawns(&pool.exited(ps[0])), vec![]);
        assert_eq!(spawns(&untimed(&pool.run_until(at(secs(7))))).len(), 1);
    }

    #[test]
    fn a_crash_storm_is_replaced_a_whole_pool_at_once_then_at_the_spawn_rate_bound() {
        let (mut pool, mut live) = Pool::started(pool_of(3), vec![group(3, 1)]);
        let interval = PoolConfig::default().crash_respawn_interval;
        // Every process dies the moment it is ready, over and over.
        let mut spawned_at = Vec::new();
        while pool.now < at(secs(2)) {
            for process in core::mem::take(&mut live) {
                let replacements = spawns(&pool.exited(process));
                spawned_at.extend(replacements.iter().map(|_| pool.now));
                live.extend(replacements);
            }
            for (instant, command) in pool.run_until(pool.now + interval) {
                if let Command::Spawn { process, .. } = command {
                    spawned_at.push(instant);
                    live.push(process);
                }
            }
            for process in live.clone() {
                pool.ready(process);
            }
        }
        assert_eq!(
            &spawned_at[..3],
            &[Instant::ZERO; 3],
            "a whole pool at once"
        );
        // From then on, one per interval: 2 s of a storm is about 20 crash replacements, not
        // thousands.
        assert!(
            (18..=24).contains(&spawned_at.len()),
            "{} spawns in 2 s: {spawned_at:?}",
            spawned_at.len()
        );
        for pair in spawned_at[3..].windows(2) {
            assert!(pair[1] >= pair[0], "{spawned_at:?}");
        }
        assert_eq!(pool.engine.totals().spawn_failures, 0);
    }

    /// Two failures next to `ps[0]`, healthy since the start: the new code is broken.
    fn failing_next_to_a_healthy_process() -> (Pool, Vec<ProcessId>) {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        pool.now = at(secs(20));
        let replacement = spawns(&pool.exited(ps[1]))[0];
        let retry = spawns(&pool.spawn_failed(replacement, "boom"));
        assert_eq!(retry.len(), 1, "the first failure is retried at once");
        assert_eq!(spawns(&pool.spawn_failed(retry[0], "boom")), vec![]);
        (pool, ps)
    }

    #[test]
    fn failures_next_to_an_old_healthy_process_still_back_off() {
        let (pool, _) = failing_next_to_a_healthy_process();
        assert_eq!(pool.status().groups[0].backoff_until, Some(at(secs(21))));
    }

    #[test]
    fn backoff_resets_once_a_process_started_after_the_failures_is_ready() {
        let (mut pool, _) = failing_next_to_a_healthy_process();
        let recovered = spawns(&untimed(&pool.run_until(at(secs(21)))))[0];
        pool.ready(recovered);
        pool.now = at(secs(32));
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let extra = spawns(&pool.arrive(0, 3))[0];
        let commands = pool.spawn_failed(extra, "boom");
        assert_eq!(
            spawns(&commands).len(),
            1,
            "the streak starts over: retried at once"
        );
        assert_eq!(pool.status().groups[0].backoff_until, None);
    }
}

mod max_requests {
    use super::*;

    fn recycling_pool(max_pool_size: usize) -> (Pool, ProcessId) {
        let groups = vec![GroupConfig {
            max_requests: 3,
            ..group(1, 1)
        }];
        let (pool, ps) = Pool::started(pool_of(max_pool_size), groups);
        (pool, ps[0])
    }

    #[test]
    fn a_process_given_max_requests_is_retired_and_replaced_while_it_drains() {
        let (mut pool, p1) = recycling_pool(6);
        for request in 1..=2 {
            pool.arrive(0, request);
            pool.finish(request);
        }
        let commands = pool.arrive(0, 3);
        assert_eq!(forward_of(&commands, 3), Some(p1));
        assert_eq!(spawns(&commands).len(), 1, "the replacement starts now");
        assert_eq!(pool.state(p1), Some(ProcessState::Draining));
        // The draining process takes nothing more.
        assert_eq!(forwards(&pool.arrive(0, 4)), vec![]);
        assert_eq!(kills(&pool.finish(3)), vec![(p1, KillMode::Graceful)]);
    }

    #[test]
    fn draining_and_stopping_processes_count_toward_max_pool_size() {
        let (mut pool, p1) = recycling_pool(2);
        for request in 1..=2 {
            pool.arrive(0, request);
            pool.finish(request);
        }
        let p2 = spawns(&pool.arrive(0, 3))[0];
        pool.arrive(0, 4);
        // p1 draining + p2 spawning: the pool is full; request 5 wants a process it cannot get.
        assert_eq!(pool.arrive(0, 5), vec![]);
        assert_eq!(kills(&pool.finish(3)), vec![(p1, KillMode::Graceful)]);
        assert_eq!(forwards(&pool.ready(p2)), vec![(4, p2)]);
        assert_eq!(pool.engine.process_count(), 2, "p1 is stopping, still live");
        assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
        assert_eq!(
            spawns(&pool.exited(p1)).len(),
            1,
            "room at last for request 5"
        );
    }
}

mod lifecycle {
    use super::*;

    /// "Last error" says what happened to a process that had been serving, and goes once the
    /// group is healthy: a process ready and `stable_uptime` without a failure since.
    #[test]
    fn the_last_error_names_a_crash_and_is_cleared_once_the_group_is_healthy() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let stable_uptime = pool.engine.config().stable_uptime;
        let replacement = spawns(&pool.input(Input::ProcessExited {
            process: ps[0],
            description: "killed by signal 9".into(),
        }))[0];
        let error = pool.status().groups[0].last_spawn_error.clone();
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("exited") && e.contains("killed by signal 9")),
            "{error:?}"
        );
        pool.now = pool.now + ms(200);
        pool.ready(replacement);
        assert!(
            pool.status().groups[0].last_spawn_error.is_some(),
            "kept until the group has been healthy for stable_uptime"
        );
        pool.run_until(pool.now + stable_uptime);
        assert_eq!(pool.status().groups[0].last_spawn_error, None);
    }

    #[test]
    fn a_process_not_ready_within_start_timeout_is_killed_and_counts_as_a_failed_spawn() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let p1 = spawns(&commands)[0];
        assert_eq!(untimed(&pool.run_until(at(secs(90) - ms(1)))), vec![]);
        let timed = pool.run_until(at(secs(90)));
        assert_eq!(kills(&untimed(&timed)), vec![(p1, KillMode::Force)]);
        let commands = pool.exited(p1);
        assert_eq!(pool.engine.totals().spawn_failures, 1);
        assert_eq!(
            pool.status().groups[0].last_spawn_error.as_deref(),
            Some("the app did not start within 90 s")
        );
        let p2 = spawns(&commands)[0];
        pool.run_until(at(secs(180)));
        assert_eq!(
            spawns(&pool.exited(p2)),
            vec![],
            "the second failure backs off"
        );
    }

    #[test]
    fn a_graceful_kill_is_forced_after_kill_timeout() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.now = at(secs(5));
        let commands = pool.input(Input::DetachProcess { process: ps[0] });
        assert_eq!(kills(&commands), vec![(ps[0], KillMode::Graceful)]);
        pool.ready(spawns(&commands)[0]);
        let timed = pool.run_until(at(secs(100)));
        assert_eq!(
            timed
                .iter()
                .filter(|(_, c)| matches!(c, Command::Kill { .. }))
                .cloned()
                .collect::<Vec<_>>(),
            vec![(
                at(secs(15)),
                Command::Kill {
                    process: ps[0],
                    mode: KillMode::Force,
                    reason: KillReason::Detached,
                }
            )]
        );
    }

    #[test]
    fn a_process_that_exits_in_time_is_not_forced() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let replacement = spawns(&pool.input(Input::DetachProcess { process: ps[0] }))[0];
        pool.ready(replacement);
        pool.now = at(secs(9));
        pool.exited(ps[0]);
        assert_eq!(kills(&untimed(&pool.run_until(at(secs(100))))), vec![]);
    }

    #[test]
    fn a_detached_idle_process_is_stopped_and_replaced_to_keep_min_instances() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let commands = pool.input(Input::DetachProcess { process: ps[0] });
        assert_eq!(kills(&commands), vec![(ps[0], KillMode::Graceful)]);
        assert_eq!(spawns(&commands).len(), 1);
    }

    #[test]
    fn a_detached_busy_process_finishes_its_sessions_then_stops() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 2)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let commands = pool.input(Input::DetachProcess { process: ps[0] });
        assert_eq!(kills(&commands), vec![]);
        assert_eq!(pool.state(ps[0]), Some(ProcessState::Draining));
        let p2 = spawns(&commands)[0];
        assert_eq!(forwards(&pool.arrive(0, 3)), vec![], "waits for p2");
        assert_eq!(forwards(&pool.ready(p2)), vec![(3, p2)]);
        assert_eq!(kills(&pool.finish(1)), vec![]);
        assert_eq!(kills(&pool.finish(2)), vec![(ps[0], KillMode::Graceful)]);
    }

    #[test]
    fn exits_and_readiness_of_unknown_processes_are_ignored() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let ghost = ProcessId(999);
        assert_eq!(pool.ready(ghost), vec![]);
        assert_eq!(pool.exited(ghost), vec![]);
        assert_eq!(pool.input(Input::DetachProcess { process: ghost }), vec![]);
        assert_eq!(pool.ready(ps[0]), vec![], "already ready");
    }

    #[test]
    fn an_instant_earlier_than_the_latest_is_taken_as_the_latest() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.now = at(secs(10));
        pool.arrive(0, 1);
        pool.now = at(secs(5));
        pool.finish(1);
        assert_eq!(pool.engine.now(), at(secs(10)));
        assert_eq!(pool.status().groups[0].processes[0].last_used, at(secs(10)));
        assert_eq!(pool.status().groups[0].processes[0].id, ps[0]);
    }
}

mod restart {
    use super::*;

    fn generations(pool: &Pool) -> Vec<(ProcessId, ProcessState, u32)> {
        pool.status().groups[0]
            .processes
            .iter()
            .map(|p| (p.id, p.state, p.generation))
            .collect()
    }

    #[test]
    fn a_rolling_restart_replaces_every_process_a_new_one_ready_before_an_old_one_goes() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        let commands = pool.input(Input::RestartGroup { group: GroupId(0) });
        assert_eq!(
            kills(&commands),
            vec![],
            "old processes serve until replaced"
        );
        let new = spawns(&commands);
        assert_eq!(new.len(), 2);
        assert_eq!(
            kills(&pool.ready(new[0])),
            vec![(ps[0], KillMode::Graceful)]
        );
        assert_eq!(
            kills(&pool.ready(new[1])),
            vec![(ps[1], KillMode::Graceful)]
        );
        pool.exited(ps[0]);
        pool.exited(ps[1]);
        assert_eq!(
            generations(&pool),
            vec![
                (new[0], ProcessState::Ready, 1),
                (new[1], ProcessState::Ready, 1)
            ]
        );
    }

    #[test]
    fn a_rolling_restart_lets_busy_old_processes_drain() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let new = spawns(&pool.input(Input::RestartGroup { group: GroupId(0) }));
        assert_eq!(kills(&pool.ready(new[0])), vec![]);
        assert_eq!(pool.state(ps[0]), Some(ProcessState::Draining));
        assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(new[0]));
        assert_eq!(kills(&pool.finish(1)), vec![(ps[0], KillMode::Graceful)]);
    }

    #[test]
    fn a_restart_stops_processes_still_spawning_the_old_code() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let p1 = spawns(&commands)[0];
        let commands = pool.input(Input::RestartGroup { group: GroupId(0) });
        assert_eq!(kills(&commands), vec![(p1, KillMode::Graceful)]);
        assert_eq!(spawns(&commands).len(), 1);
        assert_eq!(pool.ready(p1), vec![], "too late: it is on its way out");
    }

    #[test]
    fn a_second_restart_before_the_first_completes_replaces_each_process_once() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        let first = spawns(&pool.input(Input::RestartGroup { group: GroupId(0) }));
        assert_eq!(first.len(), 2);
        let commands = pool.input(Input::RestartGroup { group: GroupId(0) });
        // The first restart's spawns run old code now: stopped and spawned again.
        assert_eq!(
            kills(&commands),
            vec![
                (first[0], KillMode::Graceful),
                (first[1], KillMode::Graceful)
            ]
        );
        let second = spawns(&commands);
        assert_eq!(second.len(), 2);
        for process in first {
            pool.exited(process);
        }
        assert_eq!(
            kills(&pool.ready(second[0])),
            vec![(ps[0], KillMode::Graceful)]
        );
        assert_eq!(
            kills(&pool.ready(second[1])),
            vec![(ps[1], KillMode::Graceful)]
        );
        pool.exited(ps[0]);
        pool.exited(ps[1]);
        assert_eq!(pool.count_in(0, ProcessState::Ready), 2);
        assert!(generations(&pool).iter().all(|(_, _, g)| *g == 2));
    }
}

mod shutdown {
    use super::*;

    #[test]
    fn shutdown_serves_queued_requests_and_rejects_new_ones() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let commands = pool.input(Input::Shutdown);
        assert_eq!(
            rejects(&commands),
            vec![],
            "request 2 waits, it is not refused"
        );
        assert_eq!(kills(&commands), vec![]);
        assert_eq!(
            pool.arrive(0, 3),
            vec![Command::Reject {
                request: RequestId(3),
                reason: RejectReason::ShuttingDown
            }]
        );
        // The busy process takes the queued request when it is free, then stops.
        assert_eq!(forwards(&pool.finish(1)), vec![(2, ps[0])]);
        assert_eq!(kills(&pool.finish(2)), vec![(ps[0], KillMode::Graceful)]);
        assert_eq!(pool.exited(ps[0]), vec![Command::ShutdownComplete]);
    }

    #[test]
    fn shutdown_keeps_a_spawning_process_that_queued_requests_wait_for() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(0, 1)]);
        assert_eq!(spawns(&commands), vec![]);
        let p1 = spawns(&pool.arrive(0, 1))[0];
        let commands = pool.input(Input::Shutdown);
        assert_eq!(kills(&commands), vec![]);
        assert_eq!(rejects(&commands), vec![]);
        assert_eq!(forwards(&pool.ready(p1)), vec![(1, p1)]);
        assert_eq!(kills(&pool.finish(1)), vec![(p1, KillMode::Graceful)]);
        assert_eq!(pool.exited(p1), vec![Command::ShutdownComplete]);
    }

    #[test]
    fn shutdown_rejects_queued_requests_once_no_process_can_serve_them() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        pool.input(Input::Shutdown);
        // The only process crashes: nothing replaces it during a stop, so request 2 is told.
        let commands = pool.exited(ps[0]);
        assert_eq!(fails(&commands), vec![1]);
        assert_eq!(rejects(&commands), vec![(2, RejectReason::ShuttingDown)]);
        assert!(commands.contains(&Command::ShutdownComplete));
    }

    #[test]
    fn the_shutdown_deadline_rejects_waiting_requests_and_sends_sigterm_before_sigkill() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        pool.input(Input::Shutdown);
        let timed = pool.run_until(at(secs(100)));
        let kill = |process, mode| Command::Kill {
            process,
            mode,
            reason: KillReason::Shutdown,
        };
        let reject = Command::Reject {
            request: RequestId(2),
            reason: RejectReason::ShuttingDown,
        };
        // Request 1 ran past shutdown_timeout (30 s): SIGTERM, and SIGKILL only after
        // kill_timeout (10 s) more.
        assert_eq!(
            timed,
            vec![
                (at(secs(30)), reject),
                (at(secs(30)), kill(ps[0], KillMode::Graceful)),
                (at(secs(40)), kill(ps[0], KillMode::Force)),
            ]
        );
        assert_eq!(fails(&pool.exited(ps[0])), vec![1]);
    }

    #[test]
    fn shutdown_lets_in_flight_requests_finish_then_stops_their_process() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        assert_eq!(kills(&pool.input(Input::Shutdown)), vec![]);
        assert_eq!(fails(&pool.advance(secs(20))), vec![]);
        assert_eq!(
            pool.finish(1),
            vec![Command::Kill {
                process: ps[0],
                mode: KillMode::Graceful,
                reason: KillReason::Shutdown,
            }]
        );
        assert_eq!(pool.exited(ps[0]), vec![Command::ShutdownComplete]);
    }

    #[test]
    fn shutdown_stops_idle_and_spawning_processes_at_once_and_spawns_nothing() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let p3 = spawns(&pool.arrive(0, 3))[0];
        pool.client_gone(3);
        pool.finish(1);
        let commands = pool.input(Input::Shutdown);
        assert_eq!(
            kills(&commands),
            vec![(ps[0], KillMode::Graceful), (p3, KillMode::Graceful)]
        );
        // A crash during shutdown is not replaced, even below min_instances.
        let commands = pool.exited(ps[1]);
        assert_eq!(fails(&commands), vec![2]);
        assert_eq!(spawns(&commands), vec![]);
    }

    #[test]
    fn shutdown_forces_every_process_only_after_sigterm_and_kill_timeout() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        pool.arrive(0, 1);
        let commands = pool.input(Input::Shutdown);
        assert_eq!(
            kills(&commands),
            vec![(ps[1], KillMode::Graceful)],
            "p2 is idle"
        );
        let timed = pool.run_until(at(secs(100)));
        let kill = |process, mode| Command::Kill {
            process,
            mode,
            reason: KillReason::Shutdown,
        };
        // p2 ignored its signal for kill_timeout; p1's request ran past shutdown_timeout, so
        // p1 is asked to stop then, and made to kill_timeout later.
        assert_eq!(
            timed,
            vec![
                (at(secs(10)), kill(ps[1], KillMode::Force)),
                (at(secs(30)), kill(ps[0], KillMode::Graceful)),
                (at(secs(40)), kill(ps[0], KillMode::Force)),
            ]
        );
        assert_eq!(
            pool.exited(ps[0]),
            vec![Command::Fail {
                request: RequestId(1),
                process: ps[0],
                reason: FailReason::Stopped {
                    reason: KillReason::Shutdown
                }
            }]
        );
        assert_eq!(pool.exited(ps[1]), vec![Command::ShutdownComplete]);
    }

    #[test]
    fn shutdown_complete_is_sent_once_when_nothing_is_left() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.input(Input::Shutdown);
        assert_eq!(pool.exited(ps[0]), vec![Command::ShutdownComplete]);
        assert_eq!(pool.input(Input::Shutdown), vec![]);
        assert_eq!(pool.advance(secs(100)), vec![]);
        assert_eq!(pool.exited(ps[0]), vec![]);
        assert_eq!(rejects(&pool.arrive(0, 1)).len(), 1);
    }

    #[test]
    fn shutdown_of_an_empty_pool_completes_at_once() {
        let (mut pool, _) = Pool::start(pool_of(6), vec![group(0, 1)]);
        assert_eq!(pool.input(Input::Shutdown), vec![Command::ShutdownComplete]);
    }

    #[test]
    fn a_restart_during_shutdown_is_ignored() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.input(Input::Shutdown);
        assert_eq!(
            pool.input(Input::RestartGroup { group: GroupId(0) }),
            vec![]
        );
        assert_eq!(pool.state(ps[0]), Some(ProcessState::Draining));
    }
}

mod ferrys_own_failures {
    use super::*;

    fn out_of_descriptors(request: u64) -> Input {
        Input::ForwardFailed {
            request: RequestId(request),
            error: "Too many open files".into(),
        }
    }

    #[test]
    fn a_forward_ferry_could_not_make_is_rejected_without_blaming_the_process() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        assert_eq!(forwards(&pool.arrive(0, 1)), vec![(1, ps[0])]);
        let commands = pool.input(out_of_descriptors(1));
        let error = "Too many open files".to_string();
        assert_eq!(
            rejects(&commands),
            vec![(1, RejectReason::OutOfResources { error })]
        );
        assert_eq!(kills(&commands), vec![], "the process is not at fault");
        assert_eq!(spawns(&commands), vec![]);
        assert_eq!(pool.state(ps[0]), Some(ProcessState::Ready));
        let totals = pool.engine.totals();
        assert_eq!((totals.spawn_failures, totals.crashes), (0, 0));
        assert_eq!(pool.status().groups[0].last_spawn_error, None);
        assert_eq!(forwards(&pool.arrive(0, 2)), vec![(2, ps[0])]);
    }

    #[test]
    fn the_session_a_failed_forward_frees_goes_to_the_next_queued_request() {
        let (mut pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
        pool.arrive(0, 1);
        pool.arrive(0, 2);
        let commands = pool.input(out_of_descriptors(1));
        assert_eq!(rejects(&commands).len(), 1);
        assert_eq!(forwards(&commands), vec![(2, ps[0])]);
    }

    #[test]
    fn a_draining_process_whose_last_forward_failed_is_stopped() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let commands = pool.input(Input::DetachProcess { process: ps[0] });
        assert_eq!(kills(&commands), vec![]);
        let commands = pool.input(out_of_descriptors(1));
        assert_eq!(kills(&commands), vec![(ps[0], KillMode::Graceful)]);
    }
}
