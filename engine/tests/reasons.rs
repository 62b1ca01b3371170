//! Every command that starts or stops a process, and every 502, says why: each reason
//! appears where the rule that gives it applies. (The property model checks that every
//! reason given has grounds; these tests check that each one is given.)

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{
    Command, FailReason, GroupConfig, Input, KillMode, KillReason, PoolConfig, ProcessState,
    RejectReason, RequestId, SpawnReason, RECENT_DECISIONS,
};

fn idle_pool(max_pool_size: usize, pool_idle_time_s: u64) -> PoolConfig {
    PoolConfig {
        max_pool_size,
        pool_idle_time: secs(pool_idle_time_s),
        ..PoolConfig::default()
    }
}

mod spawns {
    use super::*;

    #[test]
    fn the_processes_at_start_are_for_min_instances() {
        let (_, commands) = Pool::start(pool_of(6), vec![group(2, 1)]);
        let reasons: Vec<SpawnReason> = spawn_reasons(&commands).iter().map(|s| s.1).collect();
        assert_eq!(reasons, [SpawnReason::MinInstances; 2]);
    }

    #[test]
    fn a_process_detached_is_replaced_for_min_instances() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let commands = pool.input(Input::DetachProcess { process: ps[0] });
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::MinInstances);
    }

    #[test]
    fn a_burst_of_waiting_requests_spawns_for_the_demand() {
        let (mut pool, _) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let mut commands = Vec::new();
        for request in 0..20 {
            commands.extend(pool.arrive(0, request));
        }
        commands.extend(untimed(&pool.run_until(at(secs(5)))));
        let reasons = spawn_reasons(&commands);
        assert_eq!(reasons.len(), 5, "to max_pool_size: {commands:?}");
        assert!(reasons.iter().all(|(_, r)| *r == SpawnReason::Demand));
    }

    #[test]
    fn a_crashed_process_is_replaced() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let commands = pool.exited(ps[0]);
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::Replacement);
        // The next spawn for the minimum is a minimum again.
        let replacement = spawn_reasons(&commands)[0].0;
        pool.ready(replacement);
        let commands = pool.input(Input::DetachProcess {
            process: replacement,
        });
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::MinInstances);
    }

    #[test]
    fn a_process_that_refused_a_connection_is_replaced() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.arrive(0, 1);
        let commands = pool.input(Input::ProcessRefused {
            request: RequestId(1),
        });
        assert_eq!(
            kill_reasons(&commands),
            [(ps[0], KillMode::Graceful, KillReason::ConnectionRefused)]
        );
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::Replacement);
    }

    #[test]
    fn a_rolling_restart_spawns_for_the_restart_and_stops_the_old_process_for_it() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        let commands = pool.input(Input::RestartGroup {
            group: ferry_engine::GroupId(0),
        });
        let spawned = spawn_reasons(&commands);
        assert_eq!(spawned.len(), 1);
        assert_eq!(spawned[0].1, SpawnReason::Restart);
        assert_eq!(
            kill_reasons(&pool.ready(spawned[0].0)),
            [(ps[0], KillMode::Graceful, KillReason::Restart)]
        );
    }

    #[test]
    fn max_requests_replaces_the_process_and_stops_it_after_its_last_request() {
        let config = GroupConfig {
            max_requests: 1,
            ..group(1, 1)
        };
        let (mut pool, ps) = Pool::started(pool_of(6), vec![config]);
        let commands = pool.arrive(0, 1);
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::MaxRequests);
        assert_eq!(
            kill_reasons(&pool.finish(1)),
            [(ps[0], KillMode::Graceful, KillReason::MaxRequests)]
        );
    }

    #[test]
    fn always_restart_mode_spawns_a_fresh_process_per_request_and_stops_it_after() {
        let (mut pool, _) = Pool::started(pool_of(6), vec![group(1, 1)]);
        pool.input(Input::SetAlwaysRestart {
            group: ferry_engine::GroupId(0),
            on: true,
        });
        let spawned = spawn_reasons(&pool.arrive(0, 1));
        assert_eq!(spawned.len(), 1);
        assert_eq!(spawned[0].1, SpawnReason::AlwaysRestart);
        assert_eq!(forward_of(&pool.ready(spawned[0].0), 1), Some(spawned[0].0));
        assert_eq!(
            kill_reasons(&pool.finish(1)),
            [(spawned[0].0, KillMode::Graceful, KillReason::AlwaysRestart)]
        );
    }

    #[test]
    fn a_spawn_after_a_failed_start_is_a_retry() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let first = spawns(&commands)[0];
        let commands = pool.spawn_failed(first, "exec failed");
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::StartRetry);
    }
}

mod kills {
    use super::*;

    #[test]
    fn an_idle_process_above_min_instances_is_stopped_as_idle() {
        let (mut pool, _) = Pool::started(idle_pool(6, 10), vec![group(1, 1)]);
        let mut spawned = Vec::new();
        for request in 0..3 {
            spawned.extend(spawns(&pool.arrive(0, request)));
        }
        // Every spawn becomes ready, every request finishes, the load stops.
        for _ in 0..10 {
            for process in std::mem::take(&mut spawned) {
                pool.ready(process);
            }
            spawned = spawns(&untimed(&pool.run_until(pool.now + ms(500))));
        }
        assert!(
            pool.count_in(0, ProcessState::Ready) > 1,
            "the burst grew the pool: {:?}",
            pool.states(0)
        );
        let mut commands = Vec::new();
        for request in 0..3 {
            commands.extend(pool.finish(request));
        }
        commands.extend(untimed(&pool.run_until(at(secs(60)))));
        // Not exited within kill_timeout, they are forced, for the same reason.
        let kills = kill_reasons(&commands);
        let graceful: Vec<_> = kills.iter().filter(|k| k.1 == KillMode::Graceful).collect();
        assert!(!graceful.is_empty());
        assert!(
            kills
                .iter()
                .all(|(_, _, reason)| *reason == KillReason::Idle),
            "{kills:?}"
        );
        for (process, _, _) in graceful {
            pool.exited(*process);
        }
        assert_eq!(
            pool.count_in(0, ProcessState::Ready),
            1,
            "back to min_instances"
        );
    }

    #[test]
    fn a_full_pool_stops_an_idle_process_of_another_group_to_make_room() {
        let (mut pool, ps) = Pool::started(pool_of(2), vec![group(1, 1), group(0, 1)]);
        pool.arrive(0, 1);
        let p2 = spawns(&pool.arrive(0, 2))[0];
        pool.ready(p2);
        pool.finish(1);
        pool.finish(2);
        pool.now = at(secs(5));
        let kills = kill_reasons(&pool.arrive(1, 3));
        assert_eq!(kills, [(ps[0], KillMode::Graceful, KillReason::MakeRoom)]);
    }

    #[test]
    fn a_detached_process_is_stopped_as_detached() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(1, 1)]);
        assert_eq!(
            kill_reasons(&pool.input(Input::DetachProcess { process: ps[0] })),
            [(ps[0], KillMode::Graceful, KillReason::Detached)]
        );
    }

    #[test]
    fn a_shutdown_stops_every_process_as_shutdown() {
        let (mut pool, ps) = Pool::started(pool_of(6), vec![group(2, 1)]);
        let kills = kill_reasons(&pool.input(Input::Shutdown));
        assert_eq!(
            kills,
            ps.iter()
                .map(|p| (*p, KillMode::Graceful, KillReason::Shutdown))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_process_not_ready_within_start_timeout_is_forced_as_start_timeout() {
        let (mut pool, commands) = Pool::start(pool_of(6), vec![group(1, 1)]);
        let first = spawns(&commands)[0];
        let kills = kill_reasons(&untimed(&pool.run_until(at(secs(91)))));
        assert_eq!(kills, [(first, KillMode::Force, KillReason::StartTimeout)]);
    }

    /// One process of `concurrency` sessions with a 10 s max_request_time: request 1 at 0 s,
    /// and request 2 at 5 s when `second`; the commands up to 11 s, request 1 timed out.
    fn first_request_timed_out(
        concurrency: u32,
        second: bool,
    ) -> (Pool, ferry_engine::ProcessId, Vec<Command>) {
        let config = GroupConfig {
            max_request_time: secs(10),
            ..group(1, concurrency)
        };
        let (mut pool, ps) = Pool::started(pool_of(6), vec![config]);
        pool.arrive(0, 1);
        if second {
            pool.now = at(secs(5));
            pool.arrive(0, 2);
        }
        let commands = untimed(&pool.run_until(at(secs(11))));
        assert!(commands.contains(&Command::TimeOut {
            request: RequestId(1),
            process: ps[0]
        }));
        (pool, ps[0], commands)
    }

    #[test]
    fn a_request_past_max_request_time_alone_on_its_process_has_it_killed_at_once() {
        let (_, process, commands) = first_request_timed_out(1, false);
        assert_eq!(
            kill_reasons(&commands),
            [(process, KillMode::Force, KillReason::RequestTimeout)]
        );
    }

    #[test]
    fn a_request_past_max_request_time_stops_its_process_and_fails_the_others_on_it() {
        let (mut pool, process, commands) = first_request_timed_out(2, true);
        let ps = [process];
        assert_eq!(
            kill_reasons(&commands),
            [(ps[0], KillMode::Graceful, KillReason::RequestTimeout)]
        );
        assert_eq!(spawn_reasons(&commands)[0].1, SpawnReason::Replacement);
        assert_eq!(
            fail_reasons(&pool.exited(ps[0])),
            [(
                2,
                FailReason::Stopped {
                    reason: KillReason::RequestTimeout
                }
            )]
        );
    }
}

#[test]
fn the_status_keeps_the_latest_decisions_with_their_instants() {
    let config = GroupConfig {
        max_request_queue_size: 1,
        ..group(1, 1)
    };
    let (mut pool, ps) = Pool::started(pool_of(1), vec![config]);
    pool.arrive(0, 1);
    pool.arrive(0, 2);
    pool.now = at(secs(3));
    pool.arrive(0, 3);
    let decisions = pool.status().recent_decisions;
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(decisions[0].at, at(secs(0)));
    assert!(matches!(
        decisions[0].command,
        Command::Spawn {
            reason: SpawnReason::MinInstances,
            ..
        }
    ));
    assert_eq!(decisions[1].at, at(secs(3)));
    assert_eq!(
        decisions[1].command,
        Command::Reject {
            request: RequestId(3),
            reason: RejectReason::QueueFull
        }
    );
    for request in 4..30 {
        pool.arrive(0, request);
    }
    let decisions = pool.status().recent_decisions;
    assert_eq!(decisions.len(), RECENT_DECISIONS);
    assert!(matches!(
        decisions.last().map(|d| &d.command),
        Some(Command::Reject { request, .. }) if *request == RequestId(29)
    ));
    assert_eq!(pool.engine.process_count(), ps.len());
}

#[test]
fn reasons_have_stable_snake_case_names() {
    let spawn = [
        SpawnReason::MinInstances,
        SpawnReason::Demand,
        SpawnReason::AlwaysRestart,
        SpawnReason::Restart,
        SpawnReason::MaxRequests,
        SpawnReason::Replacement,
        SpawnReason::StartRetry,
    ]
    .map(SpawnReason::as_str);
    assert_eq!(
        spawn,
        [
            "min_instances",
            "demand",
            "always_restart",
            "restart",
            "max_requests",
            "replacement",
            "start_retry"
        ]
    );
    let kill = [
        KillReason::Idle,
        KillReason::MaxRequests,
        KillReason::AlwaysRestart,
        KillReason::Restart,
        KillReason::Detached,
        KillReason::MakeRoom,
        KillReason::Shutdown,
        KillReason::StartTimeout,
        KillReason::RequestTimeout,
        KillReason::ConnectionRefused,
    ]
    .map(KillReason::as_str);
    assert_eq!(
        kill,
        [
            "idle",
            "max_requests",
            "always_restart",
            "restart",
            "detached",
            "make_room",
            "shutdown",
            "start_timeout",
            "request_timeout",
            "connection_refused"
        ]
    );
    let error = || "too many open files".to_string();
    let reject = [
        RejectReason::QueueFull,
        RejectReason::SpawnFailing { error: error() },
        RejectReason::ShuttingDown,
        RejectReason::OutOfResources { error: error() },
        RejectReason::QueueTimeout,
        RejectReason::UnknownGroup {
            group: ferry_engine::GroupId(3),
        },
    ];
    let names: Vec<&str> = reject.iter().map(RejectReason::as_str).collect();
    assert_eq!(
        names,
        [
            "queue_full",
            "spawn_failing",
            "shutting_down",
            "out_of_resources",
            "queue_timeout",
            "unknown_group"
        ]
    );
    assert_eq!(
        reject[3].to_string(),
        "out_of_resources (too many open files)"
    );
    let crashed = FailReason::Crashed {
        description: "killed by signal 9".into(),
    };
    assert_eq!(
        (crashed.as_str(), crashed.to_string().as_str()),
        ("crashed", "crashed (killed by signal 9)")
    );
    let stopped = FailReason::Stopped {
        reason: KillReason::Shutdown,
    };
    assert_eq!(stopped.to_string(), "stopped (shutdown)");
}
