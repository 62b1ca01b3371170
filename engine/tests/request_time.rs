//! `max_request_time` and `max_request_queue_time` (issue 9): a request that runs too long gets
//! a 504 and its process is killed and replaced; a request that waits too long in the queue
//! gets a 503. The engine keeps the time: the driver only passes instants in.

#[allow(dead_code)] // each test file uses its own part of the helpers
mod common;

use common::*;
use ferry_engine::{Command, GroupConfig, KillMode, ProcessState, RejectReason};

fn timed_group(max_request_time_s: u64, max_request_queue_time_s: u64) -> GroupConfig {
    GroupConfig {
        max_request_time: secs(max_request_time_s),
        max_request_queue_time: secs(max_request_queue_time_s),
        ..group(1, 1)
    }
}

fn timeouts(commands: &[Command]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::TimeOut { request, .. } => Some(request.0),
            _ => None,
        })
        .collect()
}

#[test]
fn a_request_running_longer_than_max_request_time_gets_a_504_and_its_process_is_replaced() {
    let (mut pool, ps) = Pool::started(pool_of(6), vec![timed_group(30, 0)]);
    pool.now = at(secs(5));
    pool.arrive(0, 1);
    assert_eq!(untimed(&pool.run_until(at(secs(35) - ms(1)))), vec![]);
    let commands = untimed(&pool.run_until(at(secs(35))));
    assert_eq!(timeouts(&commands), vec![1]);
    // Its only request: it would finish the hung one before leaving, so SIGKILL at once.
    assert_eq!(kills(&commands), vec![(ps[0], KillMode::Force)]);
    assert_eq!(spawns(&commands).len(), 1, "replaced while it is put down");
    assert_eq!(
        untimed(&pool.run_until(at(secs(45)))),
        vec![],
        "killed once"
    );
    assert_eq!(pool.engine.totals().timed_out, 1);
    assert_eq!(pool.engine.totals().failed, 1);
}

#[test]
fn the_other_requests_of_a_timed_out_process_fail_when_it_exits_and_the_queue_moves_on() {
    let groups = vec![GroupConfig {
        concurrency: 2,
        ..timed_group(30, 0)
    }];
    let (mut pool, ps) = Pool::started(pool_of(6), groups);
    pool.arrive(0, 1);
    pool.now = at(secs(10));
    pool.arrive(0, 2);
    let commands = untimed(&pool.run_until(at(secs(30))));
    assert_eq!(timeouts(&commands), vec![1]);
    let replacement = spawns(&commands)[0];
    // Request 2 may still finish: SIGTERM first, SIGKILL only after the kill timeout.
    assert_eq!(kills(&commands), vec![(ps[0], KillMode::Graceful)]);
    assert_eq!(pool.state(ps[0]), Some(ProcessState::Stopping));
    pool.arrive(0, 3);
    assert_eq!(forwards(&pool.ready(replacement)), vec![(3, replacement)]);
    assert_eq!(fails(&pool.exited(ps[0])), vec![2]);
}

#[test]
fn a_request_finished_in_time_leaves_its_process_alone() {
    let (mut pool, _) = Pool::started(pool_of(6), vec![timed_group(30, 0)]);
    pool.arrive(0, 1);
    pool.now = at(secs(29));
    pool.finish(1);
    pool.arrive(0, 2);
    let commands = untimed(&pool.run_until(at(secs(58))));
    assert_eq!(timeouts(&commands), vec![]);
    assert_eq!(kills(&commands), vec![]);
    let commands = untimed(&pool.run_until(at(secs(59))));
    assert_eq!(timeouts(&commands), vec![2], "request 2's own 30 s count");
}

#[test]
fn a_request_waiting_longer_than_max_request_queue_time_gets_a_503() {
    let (mut pool, _) = Pool::started(pool_of(1), vec![timed_group(0, 5)]);
    pool.arrive(0, 1);
    pool.now = at(secs(1));
    pool.arrive(0, 2);
    pool.now = at(secs(3));
    pool.arrive(0, 3);
    assert_eq!(untimed(&pool.run_until(at(secs(6) - ms(1)))), vec![]);
    let commands = untimed(&pool.run_until(at(secs(6))));
    assert_eq!(
        rejects(&commands),
        vec![(2, RejectReason::QueueTimeout)],
        "request 2 waited 5 s"
    );
    assert_eq!(forwards(&pool.finish(1)), vec![(3, pool_process(&pool))]);
    let commands = untimed(&pool.run_until(at(secs(9))));
    assert_eq!(
        rejects(&commands),
        vec![],
        "request 3 left the queue in time"
    );
}

fn pool_process(pool: &Pool) -> ferry_engine::ProcessId {
    pool.status().groups[0].processes[0].id
}

#[test]
fn status_shows_when_each_process_oldest_request_started() {
    let groups = vec![GroupConfig {
        concurrency: 3,
        ..group(1, 1)
    }];
    let (mut pool, _) = Pool::started(pool_of(6), groups);
    pool.now = at(secs(2));
    pool.arrive(0, 1);
    pool.now = at(secs(4));
    pool.arrive(0, 2);
    let process = &pool.status().groups[0].processes[0];
    assert_eq!(process.oldest_request_started_at, Some(at(secs(2))));
    pool.finish(1);
    let process = &pool.status().groups[0].processes[0];
    assert_eq!(process.oldest_request_started_at, Some(at(secs(4))));
}
