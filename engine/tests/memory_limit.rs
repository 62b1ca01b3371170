//! `memory_limit_bytes` (Passenger Enterprise's `--memory-limit`): a ready process measured
//! above it is replaced after its current requests, its replacement ready first, so capacity
//! never dips. Every input goes through `common::Pool`, which checks the invariants.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{GroupConfig, Input, KillMode, ProcessId, ProcessState};

const MB: u64 = 1024 * 1024;

fn limited(min_instances: usize, limit_mb: u64) -> GroupConfig {
    GroupConfig {
        memory_limit_bytes: limit_mb * MB,
        ..group(min_instances, 1)
    }
}

fn measured(pool: &mut Pool, process: ProcessId, mb: u64) -> Vec<ferry_engine::Command> {
    pool.input(Input::MemoryMeasured {
        process,
        bytes: mb * MB,
    })
}

#[test]
fn a_process_over_the_limit_is_replaced_once_its_replacement_is_ready() {
    let (mut pool, ps) = Pool::started(pool_of(6), vec![limited(2, 100)]);
    let commands = measured(&mut pool, ps[0], 150);
    assert_eq!(
        kills(&commands),
        vec![],
        "it serves until its replacement is ready"
    );
    let new = spawns(&commands);
    assert_eq!(new.len(), 1, "one replacement");
    assert_eq!(pool.count_in(0, ProcessState::Ready), 2);
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(ps[0], KillMode::Graceful)]
    );
    assert_eq!(pool.status().totals.memory_limit_replacements, 1);
    assert_eq!(spawns(&pool.exited(ps[0])), vec![], "replaced once");
    assert_eq!(pool.count_in(0, ProcessState::Ready), 2);
}

#[test]
fn a_process_over_the_limit_finishes_its_requests_first() {
    let (mut pool, ps) = Pool::started(pool_of(6), vec![limited(1, 100)]);
    assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(ps[0]));
    let new = spawns(&measured(&mut pool, ps[0], 150));
    assert_eq!(kills(&pool.ready(new[0])), vec![], "busy: it drains");
    assert_eq!(pool.state(ps[0]), Some(ProcessState::Draining));
    assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(new[0]));
    assert_eq!(kills(&pool.finish(1)), vec![(ps[0], KillMode::Graceful)]);
    assert_eq!(fails(&pool.exited(ps[0])), Vec::<u64>::new());
}

#[test]
fn a_full_pool_surges_by_one_for_the_replacement() {
    let (mut pool, ps) = Pool::started(pool_of(1), vec![limited(1, 100)]);
    let new = spawns(&measured(&mut pool, ps[0], 150));
    assert_eq!(new.len(), 1);
    assert_eq!(pool.status().process_count, 2);
    assert_eq!(
        forward_of(&pool.arrive(0, 1), 1),
        Some(ps[0]),
        "it still serves"
    );
    pool.finish(1);
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(ps[0], KillMode::Graceful)]
    );
}

#[test]
fn under_the_limit_or_without_one_nothing_happens() {
    let (mut pool, ps) = Pool::started(pool_of(6), vec![limited(1, 100)]);
    assert_eq!(
        measured(&mut pool, ps[0], 100),
        vec![],
        "at the limit is not over it"
    );
    let (mut unlimited, ps) = Pool::started(pool_of(6), vec![limited(1, 0)]);
    assert_eq!(measured(&mut unlimited, ps[0], 100_000), vec![]);
}

#[test]
fn a_process_measured_over_the_limit_again_is_replaced_once() {
    let (mut pool, ps) = Pool::started(pool_of(6), vec![limited(1, 100)]);
    assert_eq!(spawns(&measured(&mut pool, ps[0], 150)).len(), 1);
    assert_eq!(measured(&mut pool, ps[0], 200), vec![]);
    assert_eq!(pool.status().totals.memory_limit_replacements, 1);
}

#[test]
fn when_the_replacement_cannot_start_the_process_over_the_limit_keeps_serving() {
    let (mut pool, ps) = Pool::started(pool_of(1), vec![limited(1, 100)]);
    let new = spawns(&measured(&mut pool, ps[0], 150));
    let commands = pool.spawn_failed(new[0], "exec failed");
    assert_eq!(kills(&commands), vec![]);
    let commands = pool.arrive(0, 1);
    assert_eq!(forward_of(&commands, 1), Some(ps[0]));
    assert_eq!(rejects(&commands), vec![]);
}

#[test]
fn a_restart_while_a_process_is_over_the_limit_replaces_it_once() {
    // Found by the state-machine test: the process was counted twice as outdated.
    let (mut pool, ps) = Pool::started(pool_of(1), vec![limited(1, 100)]);
    let first = spawns(&measured(&mut pool, ps[0], 150));
    pool.input(Input::RestartGroup {
        group: ferry_engine::GroupId(0),
    });
    let new = spawns(&pool.exited(first[0]));
    assert_eq!(new.len(), 1);
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(ps[0], KillMode::Graceful)]
    );
}
