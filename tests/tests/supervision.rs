//! Supervision: processes that are killed, crash, fail to start or reach --max-requests; ferry
//! itself killed or stopped.

use ferry_e2e::{
    failures, get, pid_of, process_alive, signal, wait_for, Ferry, HttpClient, Load, Outcome,
};
use rustix::process::Signal;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_killed_process_is_replaced_while_the_survivor_keeps_serving() {
    let ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let before = ferry.wait_ready(2, LIMIT);
    let (victim, survivor) = (before[0], before[1]);
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(5, LIMIT);

    signal(victim, Signal::KILL);
    let replacement = wait_for("a new process in place of the killed one", LIMIT, || {
        let ready = ferry.pids_in("ready");
        let replaced = ready.len() == 2 && ferry.all_pids().len() == 2 && !ready.contains(&victim);
        replaced
            .then(|| ready.into_iter().find(|pid| *pid != survivor))
            .flatten()
    });
    assert!(
        ferry_e2e::process_alive(survivor),
        "the survivor was left alone"
    );
    let settled = load.completed();
    load.wait_more(10, LIMIT);
    let outcomes = load.stop();

    let failed = failures(&outcomes);
    assert!(
        failed.len() <= 1,
        "at most the request in flight on the killed process fails: {failed:?}"
    );
    for failure in &failed {
        assert_eq!(
            failure.as_ref().map(|r| r.status).ok(),
            Some(502),
            "{failure:?}"
        );
    }
    let pool: BTreeSet<u32> = [victim, survivor, replacement].into();
    for (i, response) in outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().ok().map(|r| (i, r)))
    {
        if response.status == 200 {
            let pid = pid_of(response).expect("a pid");
            assert!(
                pool.contains(&pid),
                "response {i} came from {pid}, not a pool process"
            );
            assert!(
                i < settled || pid != victim,
                "response {i} came from the killed process {victim}"
            );
        }
    }
    // One client at a time goes to the most recently used process (light load concentrates),
    // so the replacement shows that it serves when two requests are in flight at once: each
    // process (concurrency 1) takes one.
    let addr = ferry.addr();
    let both: BTreeSet<u32> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..2)
            .map(|_| scope.spawn(move || get(addr, "/sleep?ms=300").expect("GET /sleep")))
            .collect();
        requests
            .into_iter()
            .map(|request| pid_of(&request.join().unwrap()).expect("a pid"))
            .collect()
    });
    assert_eq!(
        both,
        [survivor, replacement].into(),
        "two requests at once are served by the survivor and the replacement"
    );
}

#[test]
fn a_crash_looping_app_answers_503_naming_the_spawn_error_and_backs_off() {
    let started = Instant::now();
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_FAIL_START", "boom")]);
    let asked = Instant::now();
    let response = get(ferry.addr(), "/").expect("GET /");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "answered at once, not after --start-timeout"
    );
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(response.header("retry-after").is_some());
    let error = ferry.group()["last_spawn_error"]
        .as_str()
        .expect("a spawn error in the status")
        .to_string();
    assert!(
        response.text().contains(&error),
        "the page names the spawn error {error:?}: {}",
        response.text()
    );

    // Spawning is retried, with growing pauses: a few attempts, not a tight loop.
    wait_for("three spawn attempts", LIMIT, || {
        (ferry.total("spawns") >= 3).then_some(())
    });
    wait_for("six seconds of crash looping", LIMIT, || {
        let spawns = ferry.total("spawns");
        assert!(
            spawns <= 8,
            "{spawns} spawn attempts after {:?}",
            started.elapsed()
        );
        (started.elapsed() >= Duration::from_secs(6)).then_some(())
    });
    assert!(ferry.total("spawns") <= 8, "{}", ferry.status());
    assert!(ferry.pids_in("ready").is_empty(), "{}", ferry.status());
}

/// Passenger's error page shows what the app printed while failing to start; `ferry` has that
/// output (it logs it) and should show it too in development.
#[test]
fn the_spawn_error_page_shows_what_the_app_printed_in_development() {
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_FAIL_START", "boom")]);
    let response = get(ferry.addr(), "/").expect("GET /");
    assert_eq!(response.status, 503);
    assert!(
        response.text().contains("error: boom"),
        "the page shows the app's own error output ('ferry-testapp: error: boom'): {}",
        response.text()
    );
}

#[test]
fn in_production_the_503_of_a_failing_app_hides_the_spawn_error() {
    let ferry = Ferry::start_testapp(
        &["--environment", "production"],
        &[("TESTAPP_FAIL_START", "boom")],
    );
    let response = get(ferry.addr(), "/").expect("GET /");
    assert_eq!(response.status, 503);
    let error = ferry.group()["last_spawn_error"]
        .as_str()
        .expect("the status still has the error")
        .to_string();
    let page = response.text();
    for secret in [error.as_str(), "boom", "exit status", "exited"] {
        assert!(
            !page.contains(secret),
            "production page shows {secret:?}: {page}"
        );
    }
}

#[test]
fn sigkill_of_ferry_leaves_no_app_process_behind() {
    let mut ferry = Ferry::start_testapp(&["--min-instances", "3"], &[]);
    let pids = ferry.wait_ready(3, LIMIT);
    signal(ferry.child.id(), Signal::KILL);
    ferry.wait_exit(LIMIT);
    wait_for("every app process to be gone", LIMIT, || {
        pids.iter().all(|pid| !process_alive(*pid)).then_some(())
    });
}

#[test]
fn ctrl_c_stops_cleanly() {
    let mut ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let pids = ferry.wait_ready(2, LIMIT);
    let instance_dir = ferry.instance_dir();
    assert!(
        instance_dir.join("instance.json").is_file(),
        "{instance_dir:?}"
    );

    let status = ferry.interrupt();
    assert_eq!(status.code(), Some(0), "{}", ferry.output_text());
    ferry.wait_output("Stopping web server... done!", LIMIT);
    assert!(
        pids.iter().all(|pid| !process_alive(*pid)),
        "every app process is gone"
    );
    assert!(
        !instance_dir.exists(),
        "the instance directory {instance_dir:?} is removed"
    );
}

#[test]
fn ferry_stop_stops_cleanly() {
    let mut ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let pids = ferry.wait_ready(2, LIMIT);
    let instance_dir = ferry.instance_dir();
    assert!(instance_dir.is_dir());

    let port = ferry.port.to_string();
    let mut stop = ferry.spawn_command(&["stop", "--port", &port]);
    // Reap the server as a shell would, while `ferry stop` waits for it to go away.
    let status = ferry.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(0), "{}", ferry.output_text());
    wait_for("ferry stop to return", LIMIT, || stop.try_wait().unwrap());
    let out = stop.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ferry stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Stopped ferry on port {port}")));
    ferry.wait_output("Stopping web server... done!", LIMIT);
    assert!(
        pids.iter().all(|pid| !process_alive(*pid)),
        "every app process is gone"
    );
    assert!(
        !instance_dir.exists(),
        "the instance directory {instance_dir:?} is removed"
    );
}

/// A server that has exited is stopped, even while its parent (a script, a supervisor, this
/// test) has not reaped it yet: `ferry stop` must not wait for the zombie to disappear.
#[test]
fn ferry_stop_returns_once_the_server_has_exited_even_before_it_is_reaped() {
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut stop = ferry.spawn_command(&["stop", "--port", &ferry.port.to_string()]);
    // process_alive counts a zombie as dead: the server has exited, unreaped.
    wait_for("the server to exit", LIMIT, || {
        (!process_alive(ferry.child.id())).then_some(())
    });
    // It polls every 20 ms: 5 s is ample once the server is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stop.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let returned = stop.try_wait().unwrap();
    if returned.is_none() {
        let _ = stop.kill();
        let _ = stop.wait();
    }
    assert!(
        returned.is_some_and(|s| s.success()),
        "`ferry stop` still waits 5 s after the server exited (a zombie must count as gone): \
         {returned:?}"
    );
}

#[test]
fn requests_in_flight_finish_during_shutdown() {
    let mut ferry = Ferry::start_testapp(&[], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let addr = ferry.addr();
    let slow = std::thread::spawn(move || get(addr, "/sleep?ms=1500"));
    wait_for("the request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });

    let status = ferry.interrupt();
    let response = slow
        .join()
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    assert_eq!(pid_of(&response), Some(pid));
    assert_eq!(status.code(), Some(0), "{}", ferry.output_text());
}

#[test]
fn a_process_that_exits_after_some_requests_is_replaced() {
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_CRASH_AFTER", "3")]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let outcome = client.get("/pid").map_err(|e| e.to_string());
        if outcome.is_err() {
            client = HttpClient::connect(ferry.addr()).unwrap();
        }
        outcomes.push(outcome);
    }
    let summary: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Ok(r) if r.status == 200 => format!("200 pid {}", r.text()),
            Ok(r) => format!(
                "{} {:?}",
                r.status,
                r.text()
                    .lines()
                    .find(|l| l.starts_with("<p>"))
                    .unwrap_or("")
            ),
            Err(e) => e.clone(),
        })
        .collect();
    let crashes = ferry.total("crashes");
    let failed = failures(&outcomes);
    assert!(
        failed.len() as u64 <= crashes && failed.iter().all(|f| matches!(f, Ok(r) if r.status == 502)),
        "only requests in flight on an exiting process may fail (502); {crashes} crashes, got: {summary:#?}"
    );
    let served: BTreeSet<u32> = outcomes
        .iter()
        .flatten()
        .filter(|r| r.status == 200)
        .filter_map(pid_of)
        .collect();
    assert!(served.len() >= 3, "new processes took over: {summary:#?}");
}

/// A request that arrives right after an app process died (here: pipelined behind the
/// request that kills it, so it reaches ferry as ferry answers 502 for that one) must not be
/// sent to the dead process's port in vain: nothing reached the app, so ferry can give it to
/// the replacement.
#[test]
fn the_request_right_after_a_crash_is_served_by_the_replacement() {
    let ferry = Ferry::start_testapp(&[], &[]);
    let old = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    client
        .send_raw(
            b"GET /crash HTTP/1.1\r\nHost: test\r\n\r\nGET /pid HTTP/1.1\r\nHost: test\r\n\r\n",
        )
        .unwrap();
    assert_eq!(client.read_response(false).unwrap().status, 502);
    let next = client.read_response(false).unwrap();
    assert_eq!(
        next.status,
        200,
        "the request after the crash: {}",
        next.text()
    );
    assert_ne!(pid_of(&next), Some(old));
}

/// A process that crashed after it had served requests is replaced; a request arriving
/// meanwhile waits for the replacement instead of being refused with "the app cannot start".
#[test]
fn a_request_waits_for_the_replacement_of_a_crashed_process() {
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_CRASH_AFTER", "3")]);
    ferry.wait_ready(1, LIMIT);
    let mut seen = BTreeSet::new();
    for round in 0..3 {
        let mut pid = None;
        for _ in 0..3 {
            let response = get(ferry.addr(), "/pid").expect("GET /pid");
            assert_eq!(response.status, 200, "round {round}: {}", response.text());
            pid = pid_of(&response);
        }
        let pid = pid.unwrap();
        assert!(
            seen.insert(pid),
            "round {round} was served by a new process"
        );
        // Wait until ferry has seen the exit, then ask again at once.
        wait_for("ferry to notice the exit", LIMIT, || {
            (!ferry.all_pids().contains(&pid)).then_some(())
        });
    }
}

#[test]
fn max_requests_replaces_processes_without_failing_a_request() {
    let ferry = Ferry::start_testapp(&["--max-requests", "5"], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let outcomes: Vec<Outcome> = (0..16)
        .map(|_| client.get("/pid").map_err(|e| e.to_string()))
        .collect();
    assert!(failures(&outcomes).is_empty(), "{outcomes:?}");
    let served: Vec<u32> = outcomes.iter().flatten().filter_map(pid_of).collect();
    let distinct: BTreeSet<u32> = served.iter().copied().collect();
    assert!(
        distinct.len() >= 4,
        "16 requests need at least 4 processes of 5: {served:?}"
    );
    for pid in &distinct {
        let count = served.iter().filter(|p| *p == pid).count();
        assert!(
            count <= 5,
            "process {pid} served {count} requests: {served:?}"
        );
    }
}
