//! Where room comes from in a full pool, between groups: a group short of `min_instances`
//! gets a slot from another group's idle process, even when that group owes the
//! replacement of a process it retired at `max_requests`. Every input goes through
//! `common::Pool`, which checks the invariants.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{GroupConfig, KillReason, ProcessState};

/// Found by the property model (engine/tests/model.rs): group 0 (min 2) is back from a
/// start failure with one process; group 1 (min 0) holds the other slot with an idle
/// process and owes a replacement for a retired one. Each group's need kept the other's
/// idle process from being taken for room, and group 0 stayed short of its minimum for
/// ever.
#[test]
fn a_group_short_of_its_minimum_gets_room_from_a_group_that_owes_a_replacement() {
    let worn_out = GroupConfig {
        max_requests: 1,
        max_spawn_concurrency: 2,
        ..group(0, 1)
    };
    let (mut pool, start) = Pool::start(pool_of(2), vec![group(2, 1), worn_out]);
    let [a1, a2] = spawns(&start)[..] else {
        panic!("group 0 starts with its 2 processes: {start:?}");
    };
    pool.spawn_failed(a1, "exec failed");
    pool.spawn_failed(a2, "exec failed");
    assert!(
        pool.status().groups[0].backoff_until.is_some(),
        "group 0 backs off"
    );
    // While group 0 backs off, group 1 takes both slots; each of its processes serves its one
    // request and is retired, owing a replacement.
    let mut b = spawns_in(&pool.arrive(1, 1), 1);
    b.extend(spawns_in(&pool.arrive(1, 2), 1));
    let [b1, b2] = b[..] else {
        panic!("two requests, two processes of group 1: {b:?}");
    };
    pool.ready(b1);
    pool.ready(b2);
    pool.advance(secs(2));
    pool.finish(1);
    let probe = spawns_in(&pool.exited(b1), 0);
    assert_eq!(probe.len(), 1, "the freed slot goes to group 0's probe");
    pool.finish(2);
    let b3 = spawns_in(&pool.exited(b2), 1);
    assert_eq!(
        b3.len(),
        1,
        "the next freed slot replaces a retired process"
    );
    pool.ready(b3[0]);
    // Group 0's probe starts: it is one short of its minimum, and the only idle process
    // above a minimum is group 1's.
    let commands = pool.ready(probe[0]);
    assert_eq!(
        kill_reasons(&commands),
        vec![(
            b3[0],
            ferry_engine::KillMode::Graceful,
            KillReason::MakeRoom
        )],
        "group 1's idle process makes room: {commands:?}"
    );
    let last = spawns_in(&pool.exited(b3[0]), 0);
    assert_eq!(last.len(), 1, "group 0 spawns its second process");
    pool.ready(last[0]);
    assert_eq!(pool.count_in(0, ProcessState::Ready), 2);
}
