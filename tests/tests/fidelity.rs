//! The simulator measured against the real server: ferry runs the test app under a fixed
//! open-loop arrival schedule (light, a burst the pool cannot keep up with, light, quiet)
//! while the test polls `ferry status --json` every second; then `ferry sim --replay` replays
//! ferry's own access log with the same pool flags, and its per-second process count and its
//! served and rejected counts must match the real ones (`ferry_sim::fidelity` judges: the
//! count within ±1 at ≥ 95% of the checkpoints, served and rejected within 10% of the real
//! count or 2 requests, whichever is more: a handful of 503s has no 10% to speak of).

use ferry_e2e::{get, run_ferry, tempdir::TempDir, wait_for, Ferry};
use ferry_sim::fidelity::{checkpoints, Comparison, Poll};
use ferry_sim::TimeSeries;
use serde_json::Value;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The test app's start (before it listens) and every request's time inside it.
const STARTUP_DELAY_MS: u64 = 300;
const REQUEST_DELAY_MS: u64 = 200;
/// The pool both the real server and the replay run: it grows to 4 in the burst, rejects
/// once 8 wait, and shrinks back to 1 after 3 s idle.
const POOL_FLAGS: [&str; 10] = [
    "--max-pool-size",
    "4",
    "--min-instances",
    "1",
    "--pool-idle-time",
    "3",
    "--concurrency",
    "1",
    "--max-request-queue-size",
    "8",
];
/// The polls cover this much: the schedule, whose last request comes after the pool has
/// shrunk back to its minimum (a replay ends with the log's last request).
const RUN_S: u64 = 25;

/// Arrival times from the schedule's start: 2 requests/s for 4 s; 30/s for 5 s (4
/// processes serve 20/s, so the queue fills and the rest get 503s); 2/s for 8 s; none for
/// 7 s, while the idle processes stop; one last request.
fn schedule_ms() -> Vec<u64> {
    let light = |from: u64, to: u64| (from..to).step_by(500);
    let burst = (0..150).map(|i| 4_000 + i * 1_000 / 30);
    light(0, 4_000)
        .chain(burst)
        .chain(light(9_000, 17_000))
        .chain([24_000])
        .collect()
}

/// Wall-clock instants as `Instant`s, so the schedule is kept by the monotonic clock.
struct Clock {
    instant: Instant,
    unix_s: f64,
}

impl Clock {
    fn now() -> Clock {
        let unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        Clock {
            instant: Instant::now(),
            unix_s,
        }
    }

    fn at(&self, unix_s: f64) -> Instant {
        self.instant + Duration::from_secs_f64((unix_s - self.unix_s).max(0.0))
    }

    fn unix_s(&self, at: Instant) -> f64 {
        self.unix_s + at.duration_since(self.instant).as_secs_f64()
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// Polls the process count every second from `start_unix_s` for [`RUN_S`] seconds.
fn poll_every_second(ferry: &Ferry, clock: &Clock, start_unix_s: f64) -> Vec<Poll> {
    (0..=RUN_S)
        .map(|k| {
            // Asked on the second, as the replay's sample is taken.
            sleep_until(clock.at(start_unix_s + k as f64));
            let asked = clock.unix_s(Instant::now());
            let processes = ferry.processes().len() as u32;
            Poll {
                unix_s: asked,
                processes,
            }
        })
        .collect()
}

/// Seconds of the day of a line of ferry's log, `[ 2026-12-02T04:49:27.906Z ] …`.
fn log_time_s(line: &str) -> Option<f64> {
    let stamp = line.strip_prefix("[ ")?.split(" ]").next()?;
    let clock = stamp.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = clock.split(':').map(|p| p.parse::<f64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(h * 3600.0 + m * 60.0 + s)
}

/// From each line `first` names a process in (by pid, `first … (pid P)` or `first P …`) to
/// the line `then P rest`: how long each process took from one to the other, in ms.
fn between(output: &str, first: &str, then: &str, rest: &str) -> Vec<f64> {
    let lines: Vec<&str> = output.lines().collect();
    let pid_in = |line: &str| -> Option<String> {
        let after = line.split_once(first)?.1;
        let pid = match after.split_once("(pid ") {
            Some((_, tail)) => tail.split(')').next()?,
            None => after.split_whitespace().next()?,
        };
        Some(pid.to_string())
    };
    lines
        .iter()
        .filter_map(|line| {
            let pid = pid_in(line)?;
            let start = log_time_s(line)?;
            let end_line = lines
                .iter()
                .find(|l| l.contains(&format!("{then}{pid}{rest}")))?;
            let end = log_time_s(end_line)?;
            // A run that crosses midnight.
            Some(((end - start).rem_euclid(86_400.0)) * 1000.0)
        })
        .collect()
}

fn median_ms(times: &[f64]) -> u64 {
    assert!(!times.is_empty(), "ferry's log shows no such process event");
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2].round() as u64
}

/// `ferry sim --replay` with the real run's pool flags and its app's measured start and
/// stop times. The test app's start is a sleep: processes starting together do not slow
/// each other down (three at once took 307–311 ms, as one alone), so no contention.
fn replay(log: &str, dir: &TempDir, spawn_ms: u64, shutdown_ms: u64) -> Value {
    let spawn_time = format!("{spawn_ms}ms");
    let shutdown_time = format!("{shutdown_ms}ms");
    let mut args = vec![
        "sim",
        "--replay",
        log,
        "--json",
        "--spawn-time",
        &spawn_time,
        "--spawn-contention",
        "0",
        "--shutdown-time",
        &shutdown_time,
    ];
    args.extend(POOL_FLAGS);
    let finished = run_ferry(&args, dir.path(), Duration::from_secs(60));
    assert!(finished.status.success(), "{}", finished.stderr);
    serde_json::from_str(&finished.stdout).expect("one JSON document")
}

#[test]
fn a_replay_of_the_access_log_matches_the_real_pool_second_by_second() {
    let dir = TempDir::new("ferry-e2e-fidelity");
    let log = dir.path().join("access.json");
    let log_text = log.display().to_string();
    let mut args = vec!["--access-log", &log_text, "--access-log-format", "json"];
    args.extend(POOL_FLAGS);
    let startup = STARTUP_DELAY_MS.to_string();
    let request = REQUEST_DELAY_MS.to_string();
    let ferry = Ferry::start_testapp(
        &args,
        &[
            ("TESTAPP_STARTUP_DELAY_MS", &startup),
            ("TESTAPP_REQUEST_DELAY_MS", &request),
        ],
    );
    ferry.wait_ready(1, Duration::from_secs(20));

    // The replay's 0 s is the first logged second: start on a whole second, the first
    // request half a second in.
    let clock = Clock::now();
    let start_unix_s = clock.unix_s.floor() + 2.0;
    let addr = ferry.addr();
    let schedule = schedule_ms();
    let (polls, outcomes) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| poll_every_second(&ferry, &clock, start_unix_s));
        let clients: Vec<JoinHandle<Result<u16, String>>> = schedule
            .iter()
            .map(|&ms| {
                sleep_until(clock.at(start_unix_s + 0.5 + ms as f64 / 1000.0));
                std::thread::spawn(move || {
                    get(addr, "/").map(|r| r.status).map_err(|e| e.to_string())
                })
            })
            .collect();
        let outcomes: Vec<Result<u16, String>> = clients
            .into_iter()
            .map(|c| c.join().expect("client thread"))
            .collect();
        (poller.join().expect("poller"), outcomes)
    });
    let served = outcomes.iter().filter(|o| **o == Ok(200)).count() as u64;
    let rejected = outcomes.iter().filter(|o| **o == Ok(503)).count() as u64;
    let others: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok(200 | 503)))
        .collect();
    assert!(others.is_empty(), "neither 200 nor 503: {others:?}");
    // Lines are written at the end of the event loop's round, just after the response.
    wait_for(
        "every request in the access log",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.lines().count() >= schedule.len()).then_some(())
        },
    );

    let output = ferry.output_text();
    let spawn_ms = median_ms(&between(
        &output,
        "Spawning app process ",
        "App process ",
        " is ready",
    ));
    let shutdown_ms = median_ms(&between(
        &output,
        "Decision: kill process ",
        "App process ",
        " exited",
    ));
    let json = replay(&log_text, &dir, spawn_ms, shutdown_ms);
    let series: TimeSeries =
        serde_json::from_value(json["time_series"].clone()).expect("a time series");
    let replay_start = json["replay"]["start_unix_s"].as_i64().expect("its 0 s");
    assert_eq!(
        replay_start as f64, start_unix_s,
        "the log starts where the schedule did"
    );
    let comparison = Comparison {
        checkpoints: checkpoints(&polls, replay_start, &series),
        served: (served, json["requests"]["served"].as_u64().unwrap()),
        rejected: (rejected, json["requests"]["rejected"].as_u64().unwrap()),
    };
    eprintln!("spawn time {spawn_ms} ms, shutdown time {shutdown_ms} ms");
    eprintln!("{}", comparison.side_by_side());
    assert_eq!(
        comparison.checkpoints.len(),
        polls.len(),
        "every poll has its second"
    );
    let failures = comparison.failures();
    assert!(
        failures.is_empty(),
        "the replay disagrees with the real run: {}\n{}",
        failures.join("; "),
        comparison.side_by_side()
    );
    // The run must have exercised what it compares: a burst that grew the pool and got
    // 503s, and an idle pool that shrank back.
    let peak = comparison.checkpoints.iter().map(|c| c.real).max().unwrap();
    assert_eq!(peak, 4, "{}", comparison.side_by_side());
    assert!(rejected > 0, "{}", comparison.side_by_side());
    let shrunk = comparison.checkpoints.iter().rev().nth(1).unwrap();
    assert_eq!(shrunk.real, 1, "{}", comparison.side_by_side());
}
