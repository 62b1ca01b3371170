//! Always-restart mode (Passenger's `tmp/always_restart.txt`): each request that arrives
//! while it is on is served by a process spawned after it arrived, and only that request.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{Command, GroupId, Input, ProcessState};

fn mode(pool: &mut Pool, on: bool) -> Vec<Command> {
    pool.input(Input::SetAlwaysRestart {
        group: GroupId(0),
        on,
    })
}

#[test]
fn each_request_gets_a_process_spawned_after_it_arrived() {
    let (mut pool, old) = Pool::started(pool_of(6), vec![group(1, 1)]);
    assert!(
        mode(&mut pool, true).is_empty(),
        "nothing changes until a request"
    );
    let commands = pool.arrive(0, 1);
    assert_eq!(
        forward_of(&commands, 1),
        None,
        "the idle old process does not get it"
    );
    let first = spawns(&commands);
    assert_eq!(first.len(), 1);
    let commands = pool.ready(first[0]);
    assert_eq!(forward_of(&commands, 1), Some(first[0]));
    assert_eq!(
        pool.state(first[0]),
        Some(ProcessState::Draining),
        "it serves that request only"
    );
    pool.finish(1);
    assert_eq!(pool.state(first[0]), Some(ProcessState::Stopping));

    let commands = pool.arrive(0, 2);
    let second = spawns(&commands);
    assert_eq!(second.len(), 1, "the next request gets its own");
    assert!(second[0] > first[0]);
    let commands = pool.ready(second[0]);
    assert_eq!(forward_of(&commands, 2), Some(second[0]));
    assert_eq!(
        pool.state(old[0]),
        Some(ProcessState::Ready),
        "still kept for min_instances"
    );

    // Off again: requests go to the processes there are.
    pool.finish(2);
    mode(&mut pool, false);
    let commands = pool.arrive(0, 3);
    assert_eq!(forward_of(&commands, 3), Some(old[0]));
    assert!(spawns(&commands).is_empty());
}

#[test]
fn a_process_that_started_before_a_request_never_serves_it() {
    let (mut pool, _) = Pool::started(pool_of(6), vec![group(0, 1)]);
    mode(&mut pool, true);
    let a = spawns(&pool.arrive(0, 1));
    let b = spawns(&pool.arrive(0, 2));
    assert_eq!((a.len(), b.len()), (1, 1));
    // The later one is ready first: it serves the older request, which it postdates; the
    // earlier one started before request 2 arrived, so another process is started for it.
    let commands = pool.ready(b[0]);
    assert_eq!(forward_of(&commands, 1), Some(b[0]));
    let c = spawns(&commands);
    assert_eq!(c.len(), 1, "{commands:?}");
    assert_eq!(
        forward_of(&pool.ready(a[0]), 2),
        None,
        "too old for request 2"
    );
    assert_eq!(forward_of(&pool.ready(c[0]), 2), Some(c[0]));
}

#[test]
fn a_full_pool_gives_up_an_old_process_for_a_fresh_one() {
    let (mut pool, old) = Pool::started(pool_of(1), vec![group(1, 1)]);
    mode(&mut pool, true);
    let commands = pool.arrive(0, 1);
    assert!(
        kills(&commands).iter().any(|(p, _)| *p == old[0]),
        "{commands:?}"
    );
    assert!(spawns(&commands).is_empty(), "no room until it has gone");
    let commands = pool.exited(old[0]);
    let fresh = spawns(&commands);
    assert_eq!(fresh.len(), 1);
    assert_eq!(forward_of(&pool.ready(fresh[0]), 1), Some(fresh[0]));
}

#[test]
fn requests_from_before_the_mode_are_served_as_usual() {
    let (mut pool, old) = Pool::started(pool_of(6), vec![group(1, 1)]);
    assert_eq!(forward_of(&pool.arrive(0, 1), 1), Some(old[0]));
    pool.arrive(0, 2); // queued behind the busy process, before the mode
    mode(&mut pool, true);
    let commands = pool.finish(1);
    assert_eq!(forward_of(&commands, 2), Some(old[0]));
}
