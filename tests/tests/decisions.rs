//! Decisions with reasons (issue 14), against the real binary: the log has one line per
//! decision with the engine's reason, and `ferry status` (JSON and text) shows the latest
//! ones: a spawn for min_instances, spawns for the demand, 503s for a full queue, and the
//! idle shutdowns after the burst.

use ferry_e2e::{concurrent_gets, wait_for, Ferry};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// `(decision, reason)` of each recent decision `ferry status --json` shows.
fn recent(ferry: &Ferry) -> Vec<(String, String)> {
    ferry.status()["recent_decisions"]
        .as_array()
        .expect("recent_decisions in the status")
        .iter()
        .map(|d: &Value| {
            let text = |key: &str| d[key].as_str().unwrap_or_default().to_string();
            (text("decision"), text("reason"))
        })
        .collect()
}

fn has(decisions: &[(String, String)], decision: &str, reason: &str) -> bool {
    decisions.iter().any(|(d, r)| d == decision && r == reason)
}

#[test]
fn the_log_and_the_status_say_why_processes_start_and_stop_and_requests_get_503() {
    let ferry = Ferry::start_testapp(
        &[
            "--max-pool-size",
            "3",
            "--pool-idle-time",
            "3",
            "--max-request-queue-size",
            "2",
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    ferry.wait_output("Decision: spawn process 1, reason: min_instances", LIMIT);

    // Six at once on one process with room for one and a queue of two: some are refused at
    // once, the waiting ones make the pool grow.
    let outcomes = concurrent_gets(ferry.addr(), &vec!["/sleep?ms=1500".to_string(); 6]);
    let statuses: Vec<u16> = outcomes
        .iter()
        .map(|o| o.as_ref().map_or(0, |r| r.status))
        .collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );

    let after_burst = recent(&ferry);
    assert!(
        has(&after_burst, "spawn", "min_instances"),
        "{after_burst:?}"
    );
    assert!(has(&after_burst, "spawn", "demand"), "{after_burst:?}");
    assert!(has(&after_burst, "503", "queue_full"), "{after_burst:?}");

    // Nothing more to do: the processes beyond min_instances go for idleness.
    let after_idle = wait_for("an idle shutdown in the status", LIMIT, || {
        let decisions = recent(&ferry);
        has(&decisions, "kill", "idle").then_some(decisions)
    });
    assert_eq!(after_idle[0].0, "kill", "newest first: {after_idle:?}");

    let text = ferry.ferry_command(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Recent decisions"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(" kill ") && l.trim_end().ends_with("idle")),
        "{text}"
    );

    for needle in [
        "reason: demand",
        "Decision: 503 request",
        "reason: queue_full",
        "Decision: kill process",
        "reason: idle",
    ] {
        ferry.wait_output(needle, LIMIT);
    }
}

/// Every 503 once in the log: the lines written one by one, plus the counts of the summary
/// lines for the ones held back.
fn logged_503s(output: &str) -> (usize, u64) {
    let mut one_by_one = 0;
    let mut summed = 0;
    for line in output.lines() {
        if line.contains("Decision: 503 request") {
            one_by_one += 1;
        } else if let Some(rest) = line.split("Decision: 503 for ").nth(1) {
            let count = rest.split(' ').next().unwrap_or_default();
            summed += count.parse::<u64>().expect("a count in the summary line");
        }
    }
    (one_by_one, summed)
}

/// In an overload the log does not take a line per 503 (a walkthrough burst wrote 391,985
/// of them, 30 MB, in 10 s): the first 20 of a second, then one line with the count of the
/// rest. None is lost from the count.
#[test]
fn an_overload_of_503s_is_logged_as_counts_not_a_line_each() {
    let mut ferry = Ferry::start_testapp(
        &["--max-pool-size", "1", "--max-request-queue-size", "1"],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    // One request holds the process and one waits: every other one is turned away.
    let addr = ferry.addr();
    let holders: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || ferry_e2e::get(addr, "/sleep?ms=4000")))
        .collect();
    wait_for("the process busy and the queue full", LIMIT, || {
        (ferry.group()["queue"] == 1).then_some(())
    });
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..75)
                    .filter(|_| ferry_e2e::get(addr, "/").is_ok_and(|r| r.status == 503))
                    .count()
            })
        })
        .collect();
    let turned_away: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    for holder in holders {
        assert_eq!(holder.join().unwrap().unwrap().status, 200);
    }
    assert!(turned_away >= 500, "{turned_away} of 600 got a 503");
    ferry.interrupt();
    let (one_by_one, summed) = wait_for("every 503 in the log", LIMIT, || {
        let (one_by_one, summed) = logged_503s(&ferry.output_text());
        (one_by_one as u64 + summed == turned_away as u64).then_some((one_by_one, summed))
    });
    assert!(summed > 0, "nothing was held back");
    assert!(
        one_by_one < turned_away / 5,
        "{one_by_one} of {turned_away} 503s logged one by one"
    );
}
