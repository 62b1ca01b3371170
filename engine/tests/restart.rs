//! Rolling restarts never reduce serving capacity (issue 9, invariant 9): an old process goes
//! only after a new one is ready to take its place; in a full pool the restart surges one
//! process beyond `max_pool_size`; when the new code cannot start, the old generation keeps
//! serving at full size and the restart is reported failed. Every input goes through
//! `common::Pool`, which checks the invariants.

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{GroupId, Input, KillMode, ProcessState, RestartOutcome, RestartStatus};

fn restart(pool: &mut Pool) -> Vec<ferry_engine::Command> {
    pool.input(Input::RestartGroup { group: GroupId(0) })
}

fn ready_count(pool: &Pool) -> usize {
    pool.count_in(0, ProcessState::Ready)
}

#[test]
fn a_restart_in_a_full_pool_surges_one_process_and_stops_no_old_one_before_it_is_ready() {
    let (mut pool, old) = Pool::started(pool_of(2), vec![group(2, 1)]);
    let commands = restart(&mut pool);
    assert_eq!(
        kills(&commands),
        vec![],
        "no old process goes before its replacement"
    );
    let new = spawns(&commands);
    assert_eq!(new.len(), 1, "one process beyond max_pool_size, not more");
    assert_eq!(pool.status().process_count, 3);
    assert_eq!(
        ready_count(&pool),
        2,
        "the old generation serves at full size"
    );
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(old[0], KillMode::Graceful)],
        "the new process is ready: one old one hands over"
    );
    assert_eq!(ready_count(&pool), 2);
    let second = spawns(&pool.exited(old[0]));
    assert_eq!(
        second.len(),
        1,
        "the next surge once the old process is gone"
    );
    assert_eq!(ready_count(&pool), 2);
    assert_eq!(
        kills(&pool.ready(second[0])),
        vec![(old[1], KillMode::Graceful)]
    );
    assert_eq!(spawns(&pool.exited(old[1])), vec![], "the restart is over");
    assert_eq!(pool.status().process_count, 2);
    assert!(pool.status().groups[0]
        .processes
        .iter()
        .all(|p| p.generation == 1 && p.state == ProcessState::Ready));
}

#[test]
fn a_pool_of_one_keeps_serving_through_a_restart() {
    let (mut pool, old) = Pool::started(pool_of(1), vec![group(1, 1)]);
    let new = spawns(&restart(&mut pool));
    assert_eq!(new.len(), 1);
    assert_eq!(
        forward_of(&pool.arrive(0, 1), 1),
        Some(old[0]),
        "the old one still serves"
    );
    assert_eq!(kills(&pool.ready(new[0])), vec![], "busy: it drains");
    assert_eq!(pool.state(old[0]), Some(ProcessState::Draining));
    assert_eq!(forward_of(&pool.arrive(0, 2), 2), Some(new[0]));
    assert_eq!(kills(&pool.finish(1)), vec![(old[0], KillMode::Graceful)]);
    assert_eq!(rejects(&pool.exited(old[0])), vec![]);
}

#[test]
fn when_the_new_code_cannot_start_the_old_generation_keeps_serving_at_full_size() {
    let (mut pool, old) = Pool::started(pool_of(2), vec![group(2, 1)]);
    let mut attempts = spawns(&restart(&mut pool));
    for round in 0..5 {
        assert_eq!(attempts.len(), 1, "round {round}: one attempt at a time");
        let failed = pool.spawn_failed(attempts[0], "exec failed: no such file");
        assert_eq!(
            kills(&failed),
            vec![],
            "round {round}: the old processes stay"
        );
        assert_eq!(ready_count(&pool), 2, "round {round}");
        // Requests go on being served by the old generation, with no 503.
        let request = 10 + round;
        let commands = pool.arrive(0, request);
        assert!(forward_of(&commands, request).is_some_and(|p| old.contains(&p)));
        assert_eq!(rejects(&commands), vec![]);
        attempts = spawns(&failed);
        attempts.extend(spawns(&commands));
        attempts.extend(spawns(&pool.finish(request)));
        // The backoff: the next attempt comes within backoff_max.
        let give_up = pool.now + secs(61);
        while attempts.is_empty() && pool.now < give_up {
            let wake = pool.engine.poll_timeout().expect("a backoff timer");
            attempts = spawns(&untimed(&pool.run_until(wake)));
        }
    }
}

#[test]
fn old_processes_crashing_during_a_restart_are_not_replaced_by_retiring_more() {
    // A crash is the app's fault, not the restart's: the replacement is still one for one.
    let (mut pool, old) = Pool::started(pool_of(3), vec![group(3, 1)]);
    let new = spawns(&restart(&mut pool));
    assert_eq!(new.len(), 1);
    pool.exited(old[2]);
    assert_eq!(ready_count(&pool), 2);
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(old[0], KillMode::Graceful)]
    );
}

#[test]
fn a_restart_does_not_surge_where_the_pool_has_room() {
    let (mut pool, old) = Pool::started(pool_of(4), vec![group(2, 1)]);
    let new = spawns(&restart(&mut pool));
    assert_eq!(new.len(), 2);
    assert_eq!(pool.status().process_count, 4);
    assert_eq!(
        kills(&pool.ready(new[0])),
        vec![(old[0], KillMode::Graceful)]
    );
}

fn reports(commands: &[ferry_engine::Command]) -> Vec<(u32, RestartOutcome)> {
    commands
        .iter()
        .filter_map(|c| match c {
            ferry_engine::Command::RestartReport {
                generation,
                outcome,
                ..
            } => Some((*generation, outcome.clone())),
            _ => None,
        })
        .collect()
}

fn restart_status(pool: &Pool) -> Option<RestartStatus> {
    pool.status().groups[0].restart.clone()
}

#[test]
fn a_restart_is_reported_done_once_every_old_process_has_handed_over() {
    let (mut pool, old) = Pool::started(pool_of(1), vec![group(1, 1)]);
    let new = spawns(&restart(&mut pool));
    let in_progress = RestartStatus {
        generation: 1,
        outcome: RestartOutcome::InProgress,
    };
    assert_eq!(restart_status(&pool), Some(in_progress));
    let commands = pool.ready(new[0]);
    assert_eq!(reports(&commands), vec![(1, RestartOutcome::Done)]);
    assert_eq!(restart_status(&pool).unwrap().outcome, RestartOutcome::Done);
    assert_eq!(reports(&pool.exited(old[0])), vec![], "reported once");
}

#[test]
fn a_restart_onto_code_that_cannot_start_is_reported_failed_with_the_error() {
    let (mut pool, _) = Pool::started(pool_of(1), vec![group(1, 1)]);
    let new = spawns(&restart(&mut pool));
    let commands = pool.spawn_failed(new[0], "exec of app.py failed: No such file");
    let failed = RestartOutcome::Failed {
        error: "exec of app.py failed: No such file".into(),
    };
    assert_eq!(reports(&commands), vec![(1, failed.clone())]);
    assert_eq!(restart_status(&pool).unwrap().outcome, failed);
    // Later failures of the same restart are not reported again.
    let retry = spawns(&commands);
    assert_eq!(reports(&pool.spawn_failed(retry[0], "again")), vec![]);
}

#[test]
fn a_failed_restart_completes_if_a_later_attempt_starts() {
    let (mut pool, old) = Pool::started(pool_of(1), vec![group(1, 1)]);
    let new = spawns(&restart(&mut pool));
    let retry = spawns(&pool.spawn_failed(new[0], "exec failed"));
    let commands = pool.ready(retry[0]);
    assert_eq!(reports(&commands), vec![(1, RestartOutcome::Done)]);
    assert_eq!(kills(&commands), vec![(old[0], KillMode::Graceful)]);
}

#[test]
fn a_new_restart_ends_the_backoff_of_a_failed_one() {
    let (mut pool, _) = Pool::started(pool_of(1), vec![group(1, 1)]);
    let mut attempt = spawns(&restart(&mut pool));
    // Two failures: the second backs off.
    attempt = spawns(&pool.spawn_failed(attempt[0], "broken"));
    assert_eq!(spawns(&pool.spawn_failed(attempt[0], "broken")), vec![]);
    assert!(pool.status().groups[0].backoff_until.is_some());
    let fixed = spawns(&restart(&mut pool));
    assert_eq!(fixed.len(), 1, "the fixed deploy starts at once");
    assert_eq!(
        reports(&pool.ready(fixed[0])),
        vec![(2, RestartOutcome::Done)]
    );
}

#[test]
fn a_restart_of_a_group_with_no_process_is_done_at_once() {
    let (mut pool, _) = Pool::started(pool_of(2), vec![group(0, 1)]);
    assert_eq!(
        reports(&restart(&mut pool)),
        vec![(1, RestartOutcome::Done)]
    );
}
