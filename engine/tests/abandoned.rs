//! Clients that hang up while the app works on their request (`Input::ClientAbandoned`,
//! issue 9): the session stays until the app is done, so the process is not handed another
//! request while it is busy, and the request counts as cancelled when it ends.

#[allow(dead_code)] // each test file uses its own part of the helpers
mod common;

use common::*;
use ferry_engine::{Command, GroupConfig, GroupId, Input, KillMode, RequestId};

fn abandon(pool: &mut Pool, request: u64) -> Vec<Command> {
    pool.input(Input::ClientAbandoned {
        request: RequestId(request),
    })
}

fn single_process() -> (Pool, ferry_engine::ProcessId) {
    let (pool, ps) = Pool::started(pool_of(1), vec![group(1, 1)]);
    (pool, ps[0])
}

#[test]
fn an_abandoned_request_keeps_its_session_until_the_app_finishes() {
    let (mut pool, p1) = single_process();
    pool.arrive(0, 1);
    pool.arrive(0, 2);
    assert_eq!(
        abandon(&mut pool, 1),
        vec![],
        "the queued request still waits"
    );
    assert_eq!(pool.engine.busy_sessions(), 1);
    assert_eq!(pool.engine.queue_len(GroupId(0)), 1);
    // The app is done: now the process takes the next request.
    assert_eq!(forwards(&pool.finish(1)), vec![(2, p1)]);
    let totals = pool.engine.totals();
    assert_eq!((totals.cancelled, totals.served), (1, 0));
}

#[test]
fn an_abandoned_request_whose_exchange_breaks_counts_as_cancelled() {
    let (mut pool, _) = single_process();
    pool.arrive(0, 1);
    abandon(&mut pool, 1);
    pool.input(Input::RequestFailed {
        request: RequestId(1),
    });
    let totals = pool.engine.totals();
    assert_eq!((totals.cancelled, totals.failed), (1, 0));
    assert_eq!(pool.engine.busy_sessions(), 0);
}

#[test]
fn a_queued_request_whose_client_leaves_leaves_the_queue_at_once() {
    let (mut pool, _) = single_process();
    pool.arrive(0, 1);
    pool.arrive(0, 2);
    assert_eq!(abandon(&mut pool, 2), vec![]);
    assert_eq!(pool.engine.queue_len(GroupId(0)), 0);
    assert_eq!(pool.engine.totals().cancelled, 1);
    assert_eq!(pool.finish(1), vec![], "nothing left for the process");
    pool.arrive(0, 3);
    assert_eq!(pool.engine.busy_sessions(), 1);
}

#[test]
fn an_abandoned_request_still_runs_into_max_request_time() {
    let groups = vec![GroupConfig {
        max_request_time: secs(30),
        ..group(1, 1)
    }];
    let (mut pool, ps) = Pool::started(pool_of(2), groups);
    pool.arrive(0, 1);
    abandon(&mut pool, 1);
    let commands = untimed(&pool.run_until(at(secs(30))));
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::TimeOut { request, .. } if request.0 == 1)),
        "{commands:?}"
    );
    // It was the process's only request: nothing on it to finish first.
    assert_eq!(kills(&commands), vec![(ps[0], KillMode::Force)]);
    assert_eq!(pool.engine.totals().timed_out, 1);
}

#[test]
fn an_abandoned_request_is_not_sent_elsewhere_when_its_process_refused_it() {
    let (mut pool, _) = Pool::started(pool_of(2), vec![group(2, 1)]);
    pool.arrive(0, 1);
    abandon(&mut pool, 1);
    let commands = pool.input(Input::ProcessRefused {
        request: RequestId(1),
    });
    assert_eq!(forwards(&commands), vec![], "nobody waits for it");
    assert_eq!(pool.engine.totals().cancelled, 1);
    assert_eq!(pool.engine.queue_len(GroupId(0)), 0);
}

#[test]
fn an_abandoned_request_whose_process_dies_fails_with_it() {
    let (mut pool, p1) = single_process();
    pool.arrive(0, 1);
    abandon(&mut pool, 1);
    assert_eq!(fails(&pool.exited(p1)), vec![1]);
    assert_eq!(pool.engine.totals().failed, 1);
}
