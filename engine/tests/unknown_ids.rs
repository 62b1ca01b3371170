//! Inputs naming a group, process or request the engine does not know: a caller's late or
//! mistaken input must not bring the pool down. Ids it never knew are ignored like ids that
//! ended, except a request for an unknown group, which is answered (it must end exactly once).

#[allow(dead_code)] // each test file uses a part of the shared helpers
mod common;

use common::*;
use ferry_engine::{Command, GroupId, Input, ProcessId, RejectReason, RequestId};

const UNKNOWN_GROUP: GroupId = GroupId(7);
const UNKNOWN_PROCESS: ProcessId = ProcessId(999);
const UNKNOWN_REQUEST: RequestId = RequestId(999);

#[test]
fn inputs_for_an_unknown_group_are_ignored() {
    let (mut pool, _) = Pool::started(pool_of(2), vec![group(1, 1)]);
    let before = pool.status();
    for input in [
        Input::RestartGroup {
            group: UNKNOWN_GROUP,
        },
        Input::SetAlwaysRestart {
            group: UNKNOWN_GROUP,
            on: true,
        },
    ] {
        let commands = pool.input(input.clone());
        assert_eq!(commands, vec![], "{input:?} did something");
    }
    assert_eq!(pool.status(), before);
    assert_eq!(pool.engine.queue_len(UNKNOWN_GROUP), 0);
}

#[test]
fn a_request_for_an_unknown_group_is_rejected_naming_the_group() {
    let (mut pool, _) = Pool::started(pool_of(2), vec![group(1, 1)]);
    let commands = pool.input(Input::RequestArrived {
        group: UNKNOWN_GROUP,
        request: RequestId(1),
    });
    assert_eq!(
        commands,
        vec![Command::Reject {
            request: RequestId(1),
            reason: RejectReason::UnknownGroup {
                group: UNKNOWN_GROUP
            },
        }]
    );
    let totals = pool.status().totals;
    assert_eq!((totals.arrived, totals.rejected), (1, 1));
}

#[test]
fn inputs_for_unknown_processes_and_requests_are_ignored() {
    let (mut pool, _) = Pool::started(pool_of(2), vec![group(1, 1)]);
    let before = pool.status();
    let request = UNKNOWN_REQUEST;
    let process = UNKNOWN_PROCESS;
    for input in [
        Input::RequestFinished { request },
        Input::RequestFailed { request },
        Input::SessionUpgraded { request },
        Input::ClientGone { request },
        Input::ProcessRefused { request },
        Input::ForwardFailed {
            request,
            error: "out of file descriptors".into(),
        },
        Input::ProcessReady { process },
        Input::SpawnFailed {
            process,
            error: "exec failed".into(),
        },
        Input::ProcessExited {
            process,
            description: "exit status 1".into(),
        },
        Input::DetachProcess { process },
    ] {
        let commands = pool.input(input.clone());
        assert_eq!(commands, vec![], "{input:?} did something");
    }
    assert_eq!(pool.status(), before);
    assert_eq!(pool.engine.process_group(process), None);
}
