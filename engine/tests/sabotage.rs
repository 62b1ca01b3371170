//! Each invariant check can fail: break the engine on purpose (the `sabotage` feature), feed it
//! the inputs that expose the break, and `check_invariants` must name the invariant broken.
//!
//! With a sabotage set, `handle` does not panic on a violation: these tests look for it.

use core::time::Duration;
use ferry_engine::{
    Command, Config, Engine, GroupConfig, GroupId, Input, Instant, PoolConfig, ProcessId,
    RequestId, Sabotage, Violation,
};

struct Sabotaged {
    engine: Engine,
    now: Instant,
}

impl Sabotaged {
    /// An engine with ready `min_instances` processes, healthy so far, then broken.
    fn new(
        pool: PoolConfig,
        group: GroupConfig,
        sabotage: Sabotage,
    ) -> (Sabotaged, Vec<ProcessId>) {
        let config = Config {
            pool,
            groups: vec![group],
        };
        let mut engine = Engine::new(config, Instant::ZERO).unwrap();
        let mut processes = Vec::new();
        while let Some(command) = engine.poll_command() {
            if let Command::Spawn { process, .. } = command {
                processes.push(process);
            }
        }
        for process in &processes {
            engine.handle(Instant::ZERO, Input::ProcessReady { process: *process });
            while engine.poll_command().is_some() {}
        }
        engine.sabotage(sabotage);
        let sabotaged = Sabotaged {
            engine,
            now: Instant::ZERO,
        };
        assert_eq!(sabotaged.engine.check_invariants(), Ok(()));
        (sabotaged, processes)
    }

    fn input(&mut self, input: Input) -> Vec<Command> {
        self.engine.handle(self.now, input);
        core::iter::from_fn(|| self.engine.poll_command()).collect()
    }

    fn arrive(&mut self, request: u64) -> Vec<Command> {
        self.input(Input::RequestArrived {
            group: GroupId(0),
            request: RequestId(request),
        })
    }

    /// The invariant broken now, asserting it held before the last input.
    fn broken(&self) -> u8 {
        match self.engine.check_invariants() {
            Err(Violation { invariant, detail }) => {
                assert!(!detail.is_empty());
                invariant
            }
            Ok(()) => panic!("the sabotage went unnoticed"),
        }
    }

    fn healthy(&self) {
        assert_eq!(self.engine.check_invariants(), Ok(()));
    }
}

fn group(min_instances: usize, concurrency: u32) -> GroupConfig {
    GroupConfig {
        min_instances,
        concurrency,
        ..GroupConfig::default()
    }
}

fn pool_of(max_pool_size: usize) -> PoolConfig {
    PoolConfig {
        max_pool_size,
        ..PoolConfig::default()
    }
}

#[test]
fn ignoring_max_pool_size_breaks_invariant_1() {
    let (mut pool, _) = Sabotaged::new(pool_of(1), group(1, 1), Sabotage::IgnoreMaxPoolSize);
    pool.arrive(1);
    pool.healthy();
    pool.arrive(2); // queued: the sabotaged engine spawns into the full pool
    assert_eq!(pool.broken(), 1);
}

#[test]
fn ignoring_min_instances_breaks_invariant_2() {
    let (mut pool, processes) =
        Sabotaged::new(pool_of(6), group(2, 1), Sabotage::IgnoreMinInstances);
    pool.input(Input::ProcessExited {
        process: processes[1],
        description: "killed by signal 9".into(),
    });
    assert_eq!(pool.broken(), 2);
}

#[test]
fn forgetting_a_cancelled_request_breaks_invariant_3() {
    let (mut pool, _) = Sabotaged::new(pool_of(1), group(1, 1), Sabotage::ForgetCancelledRequest);
    pool.arrive(1);
    pool.arrive(2);
    pool.healthy();
    pool.input(Input::ClientGone {
        request: RequestId(2),
    });
    assert_eq!(pool.broken(), 3);
}

#[test]
fn routing_to_the_busiest_process_breaks_invariant_4() {
    let (mut pool, _) = Sabotaged::new(pool_of(6), group(2, 4), Sabotage::RouteToBusiest);
    pool.arrive(1); // both idle: any choice is right
    pool.healthy();
    pool.arrive(2); // to the one with a session already
    assert_eq!(pool.broken(), 4);
}

#[test]
fn ignoring_the_queue_limit_breaks_invariant_5() {
    let group = GroupConfig {
        max_request_queue_size: 1,
        ..group(1, 1)
    };
    let (mut pool, _) = Sabotaged::new(pool_of(1), group, Sabotage::IgnoreQueueLimit);
    pool.arrive(1);
    pool.arrive(2);
    pool.healthy();
    pool.arrive(3);
    assert_eq!(pool.broken(), 5);
}

#[test]
fn shutting_a_busy_process_down_for_idleness_breaks_invariant_5() {
    let pool = PoolConfig {
        pool_idle_time: Duration::from_secs(300),
        ..pool_of(6)
    };
    let (mut pool, _) = Sabotaged::new(pool, group(1, 1), Sabotage::IdleShutdownWhileBusy);
    pool.now = Instant::ZERO + Duration::from_secs(10);
    pool.arrive(1);
    pool.healthy();
    // Its idle timer, set when it became ready, fires while it serves.
    pool.now = Instant::ZERO + Duration::from_secs(300);
    pool.input(Input::Tick);
    assert_eq!(pool.broken(), 5);
}

#[test]
fn never_shutting_idle_processes_down_breaks_invariant_6() {
    let pool = PoolConfig {
        pool_idle_time: Duration::from_secs(300),
        ..pool_of(6)
    };
    let (mut pool, _) = Sabotaged::new(pool, group(0, 1), Sabotage::NeverIdleShutdown);
    let commands = pool.arrive(1);
    let Some(Command::Spawn { process, .. }) = commands.first().cloned() else {
        panic!("{commands:?}")
    };
    pool.input(Input::ProcessReady { process });
    pool.input(Input::RequestFinished {
        request: RequestId(1),
    });
    pool.now = Instant::from_nanos(300_000_000_000 - 1);
    pool.input(Input::Tick);
    pool.healthy();
    pool.now = Instant::ZERO + Duration::from_secs(300);
    pool.input(Input::Tick);
    assert_eq!(pool.broken(), 6);
}

#[test]
fn keeping_requests_waiting_past_the_shutdown_deadline_breaks_invariant_11() {
    let (mut pool, _) = Sabotaged::new(
        pool_of(1),
        group(1, 1),
        Sabotage::KeepQueueAfterShutdownDeadline,
    );
    pool.arrive(1);
    pool.arrive(2);
    pool.input(Input::Shutdown);
    pool.healthy(); // request 2 may wait for the busy process until the deadline
    pool.now = Instant::ZERO + PoolConfig::default().shutdown_timeout;
    pool.input(Input::Tick);
    assert_eq!(pool.broken(), 11);
}

#[test]
fn backing_off_after_crashes_of_ready_processes_breaks_invariant_8() {
    let (mut pool, processes) =
        Sabotaged::new(pool_of(6), group(1, 1), Sabotage::BackOffAfterCrash);
    pool.input(Input::ProcessExited {
        process: processes[0],
        description: "killed by signal 9".into(),
    });
    pool.healthy();
    pool.arrive(1);
    assert_eq!(pool.broken(), 8);
}

#[test]
fn ignoring_request_deadlines_breaks_invariant_5() {
    let group = GroupConfig {
        max_request_time: Duration::from_secs(30),
        ..group(1, 1)
    };
    let (mut pool, _) = Sabotaged::new(pool_of(6), group, Sabotage::IgnoreRequestDeadlines);
    pool.arrive(1);
    pool.now = Instant::ZERO + Duration::from_secs(29);
    pool.input(Input::Tick);
    pool.healthy();
    pool.now = Instant::ZERO + Duration::from_secs(30);
    pool.input(Input::Tick);
    assert_eq!(pool.broken(), 5);
}

#[test]
fn routing_a_fresh_request_to_an_old_process_breaks_invariant_12() {
    let (mut pool, old) = Sabotaged::new(pool_of(6), group(1, 1), Sabotage::RouteFreshToStale);
    pool.input(Input::SetAlwaysRestart {
        group: GroupId(0),
        on: true,
    });
    let spawned: Vec<ProcessId> = pool
        .arrive(1)
        .iter()
        .filter_map(|c| match c {
            Command::Spawn { process, .. } => Some(*process),
            _ => None,
        })
        .collect();
    pool.healthy();
    assert_eq!(spawned.len(), 1, "a process for the request");
    // The new process is ready: the broken dispatch hands the request to the old, idle one.
    let commands = pool.input(Input::ProcessReady {
        process: spawned[0],
    });
    assert!(commands.contains(&Command::Forward {
        request: RequestId(1),
        process: old[0]
    }));
    assert_eq!(pool.broken(), 12);
}

#[test]
fn never_shrinking_to_demand_breaks_invariant_10() {
    let pool_config = PoolConfig {
        pool_idle_time: core::time::Duration::from_secs(60),
        ..pool_of(6)
    };
    // One process, then three requests at once for ten seconds (the pool grows to three
    // and needs them), then one request at a time: once the busy stretch is a pool_idle_time
    // ago, the two processes beyond what the load needs must be gone.
    let (mut pool, _) = Sabotaged::new(pool_config, group(1, 1), Sabotage::NeverShrinkToDemand);
    let mut request = 0;
    let mut waiting = Vec::new();
    for step in 0..100u64 {
        pool.now = Instant::from_nanos(step * 100_000_000);
        for _ in 0..3 {
            for command in pool.arrive(request) {
                if let Command::Spawn { process, .. } = command {
                    waiting.push(process);
                }
            }
            request += 1;
        }
        for process in waiting.drain(..) {
            pool.input(Input::ProcessReady { process });
        }
        for done in request - 3..request {
            pool.input(Input::RequestFinished {
                request: RequestId(done),
            });
        }
    }
    pool.healthy();
    let mut broken = None;
    for step in 100..2000u64 {
        pool.now = Instant::from_nanos(step * 100_000_000);
        pool.arrive(request);
        pool.input(Input::RequestFinished {
            request: RequestId(request),
        });
        request += 1;
        if let Err(violation) = pool.engine.check_invariants() {
            broken = Some(violation.invariant);
            break;
        }
    }
    assert_eq!(broken, Some(10));
}

#[test]
fn stopping_an_old_process_before_its_replacement_is_ready_breaks_invariant_9() {
    // What a full pool did before: make room for the new process by stopping an old one.
    let (mut pool, old) =
        Sabotaged::new(pool_of(1), group(1, 1), Sabotage::RetireBeforeReplacement);
    let commands = pool.input(Input::RestartGroup { group: GroupId(0) });
    assert!(commands.contains(&Command::Kill {
        process: old[0],
        mode: ferry_engine::KillMode::Graceful,
        reason: ferry_engine::KillReason::Restart,
    }));
    assert_eq!(pool.broken(), 9);
}
