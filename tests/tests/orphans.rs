//! No app process outlives ferry: not the direct child, not what it forks (a shell wrapper's
//! app, a pre-forking server's workers), whether ferry stops normally or is killed.

use ferry_e2e::tempdir::TempDir;
use ferry_e2e::{process_alive, repo_root, signal, testapp_bin, wait_for, Ferry};
use rustix::process::Signal;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// Every process whose process group is `pgid` (the app process and all it forked that did
/// not leave the group), from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if ferry::proc_stats::stat(pid).is_some_and(|s| s.pgrp == pgid && s.is_alive()) {
            members.push(pid);
        }
    }
    members
}

/// ferry with a start command that forks: a shell that starts the app and a second long
/// process in the background and waits, as wrapper scripts and pre-forking servers do.
/// Returns ferry and every process of the app's group once the app is ready.
fn start_forking_app() -> (Ferry, Vec<u32>) {
    let command = format!(
        "/bin/sh -c '{} & sleep 300 & wait'",
        testapp_bin().display()
    );
    let ferry = Ferry::start_in(
        Arc::new(TempDir::new("ferry-e2e")),
        &[
            repo_root().join("tests").display().to_string(),
            "--app-start-command".to_string(),
            command,
        ],
        &[],
    );
    let leader = ferry.wait_ready(1, LIMIT)[0];
    let members = wait_for("the wrapper, the app and the sleep", LIMIT, || {
        let members = group_members(leader);
        (members.len() >= 3).then_some(members)
    });
    (ferry, members)
}

fn assert_all_gone(members: &[u32]) {
    wait_for("every process of the app's group to be gone", LIMIT, || {
        members.iter().all(|pid| !process_alive(*pid)).then_some(())
    });
}

#[test]
fn sigkill_of_ferry_leaves_nothing_a_shell_wrapper_forked() {
    let (mut ferry, members) = start_forking_app();
    signal(ferry.child.id(), Signal::KILL);
    ferry.wait_exit(LIMIT);
    assert_all_gone(&members);
}

#[test]
fn a_normal_stop_leaves_nothing_a_shell_wrapper_forked() {
    let (mut ferry, members) = start_forking_app();
    let status = ferry.interrupt();
    assert_eq!(status.code(), Some(0), "{}", ferry.output_text());
    assert_all_gone(&members);
}
