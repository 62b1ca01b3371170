//! Access logs: reading each format (good lines, bad lines with their numbers, the 1% rule),
//! replaying a log deterministically, and `ferry plan`'s choice where the answer is known.

use ferry_sim::accesslog::{AccessLog, LogFormat};
use ferry_sim::plan::{plan, PlanOptions};
use ferry_sim::{run, scenario_of_log, PoolSettings, ReplayApp, SimDuration};

const FORMAT: LogFormat = LogFormat::CombinedWithTime;

fn nginx(second: u32, request_time: &str) -> String {
    format!(
        r#"10.0.0.1 - - [30/Nov/2026:09:00:{second:02} +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8.5.0" {request_time}"#
    )
}

fn apache(second: u32, micros: u64) -> String {
    format!(
        r#"10.0.0.2 - frank [30/Nov/2026:10:00:{second:02} +0100] "POST /b?x=[1] HTTP/1.1" 201 7 "http://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" {micros}"#
    )
}

fn parse(lines: &[String]) -> Result<AccessLog, String> {
    AccessLog::parse(&lines.join("\n"), "test.log", FORMAT).map_err(|e| e.to_string())
}

#[test]
fn nginx_lines_end_at_their_logged_time_spread_over_the_second() {
    // nginx logs a request when it ends: two in second 1 are logged at 1.25 s and 1.75 s.
    let log = parse(&[nginx(0, "0.000"), nginx(1, "0.250"), nginx(1, "0.500")]).unwrap();
    let got: Vec<(u64, u64)> = log
        .requests
        .iter()
        .map(|r| (r.arrival_nanos / 1_000_000, r.service_nanos / 1_000_000))
        .collect();
    assert_eq!(got, [(500, 0), (1_000, 250), (1_250, 500)]);
    assert_eq!((log.lines, log.unreadable_count), (3, 0));
}

#[test]
fn apache_lines_start_at_their_logged_time_in_microseconds() {
    // %t is when Apache received the request; %D its duration in microseconds. Brackets and
    // spaces inside quoted fields do not confuse the reader.
    let log = parse(&[apache(0, 12_000), apache(0, 3_500_000), apache(2, 1)]).unwrap();
    let got: Vec<(u64, u64)> = log
        .requests
        .iter()
        .map(|r| (r.arrival_nanos / 1_000, r.service_nanos / 1_000))
        .collect();
    assert_eq!(
        got,
        [(250_000, 12_000), (750_000, 3_500_000), (2_500_000, 1)]
    );
}

#[test]
fn an_unreadable_line_is_counted_with_its_number_and_over_one_percent_is_an_error() {
    let mut lines: Vec<String> = (0..199).map(|i| nginx(i % 60, "0.010")).collect();
    lines.insert(
        41,
        r#"10.0.0.1 - - [30/Nov/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#.into(),
    );
    // 1 of 200 lines (0.5%): read, and the line is reported.
    let log = parse(&lines).unwrap();
    assert_eq!((log.requests.len(), log.unreadable_count), (199, 1));
    let summary = log.unreadable_summary();
    assert!(summary.starts_with("line 42: no request time"), "{summary}");
    // 3 of 202 (1.5%): an error naming the lines and the expected format.
    lines.insert(0, "garbage".into());
    lines.push(nginx(3, "fast"));
    let error = parse(&lines).unwrap_err();
    assert!(
        error.contains("3 of 202 lines cannot be read (more than 1%)"),
        "{error}"
    );
    assert!(error.contains("line 1: no [time] field"), "{error}");
    assert!(error.contains("line 43: no request time"), "{error}");
    assert!(error.contains("line 202: request time \"fast\""), "{error}");
    let bad_time =
        parse(&[r#"h - - [31/Foo/2026:09:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-" 0.1"#.into()])
            .unwrap_err();
    assert!(
        bad_time.contains("line 1: bad time [31/Foo/2026:09:00:01 +0000]"),
        "{bad_time}"
    );
    assert!(parse(&[]).unwrap_err().contains("no lines"));
}

/// A line of ferry's own combined access log: the request time and the pid follow.
fn ferry_line(second: u32, request_time: &str, pid: &str) -> String {
    format!(
        r#"127.0.0.1 - - [02/Dec/2026:01:00:{second:02} +0000] "GET /x?q=\x22 HTTP/1.1" 503 91 "-" "curl/8.5.0" {request_time} {pid}"#
    )
}

#[test]
fn ferry_combined_lines_end_at_their_logged_time_with_or_without_a_pid() {
    let lines = [
        ferry_line(0, "0.100", "4242"),
        ferry_line(1, "0.250", "-"),
        ferry_line(1, "0.500", "4243"),
    ];
    let text = lines.join("\n");
    assert_eq!(LogFormat::detect(&text), LogFormat::Ferry);
    // nginx's lines have one field after the last quote, not two.
    assert_eq!(
        LogFormat::detect(&nginx(0, "0.1")),
        LogFormat::CombinedWithTime
    );
    let log = AccessLog::parse(&text, "ferry.log", LogFormat::Ferry).unwrap();
    let got: Vec<(u64, u64)> = log
        .requests
        .iter()
        .map(|r| (r.arrival_nanos / 1_000_000, r.service_nanos / 1_000_000))
        .collect();
    // The line without a pid (no app process served it: a 503 here) arrived 0.25 s before
    // its end, and is served for the served requests' median, not its 0.25 s in ferry.
    assert_eq!(got, [(400, 100), (1_000, 500), (1_250, 500)]);
    let bad = [
        ferry_line(0, "0.100", "4242"),
        ferry_line(0, "0.100", "pid7"),
        ferry_line(0, "slow", "1"),
    ];
    let error = AccessLog::parse(&bad.join("\n"), "ferry.log", LogFormat::Ferry).unwrap_err();
    let error = error.to_string();
    assert!(error.contains("is it ferry's access log"), "{error}");
    assert!(error.contains("line 2: pid \"pid7\""), "{error}");
    assert!(error.contains("line 3: request time \"slow\""), "{error}");
}

#[test]
fn ferry_json_lines_keep_their_millisecond_and_detect_themselves() {
    let text = [
        r#"{"time":"2026-12-02T01:00:00.750Z","remote_addr":"127.0.0.1","status":200,"request_time":0.25,"queue_time":0.05,"pid":7}"#,
        r#"{"time":"2026-12-02T01:00:00.300Z","request_time":0.1,"pid":null}"#,
        r#"{"time":"2026-12-02T01:00:02.000+01:00","request_time":0.0}"#,
    ]
    .join("\n");
    assert_eq!(LogFormat::detect(&text), LogFormat::FerryJson);
    let log = AccessLog::parse(&text, "ferry.json", LogFormat::FerryJson).unwrap();
    let got: Vec<(u64, u64)> = log
        .requests
        .iter()
        .map(|r| (r.arrival_nanos / 1_000_000, r.service_nanos / 1_000_000))
        .collect();
    // Placed exactly: ended at 0.75 s after 0.25 s, at 0.3 s after 0.1 s; the third line is
    // an hour before the others (its zone), so it comes first and the log starts there.
    // The first is served for its 0.25 s less its 0.05 s in the queue; the others, which no
    // app process served (pid null or none), for that served request's 0.2 s.
    assert_eq!(log.start_unix_s, 1_796_169_602); // 2026-12-02T00:00:02Z
    assert_eq!(
        got,
        [(0, 200), (3_598_200, 200), (3_598_500, 200)],
        "{:?}",
        log.requests
    );
    let error = AccessLog::parse(
        r#"{"time":"yesterday","request_time":1}"#,
        "f",
        LogFormat::FerryJson,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("line 1: bad time \"yesterday\""), "{error}");
    let error = AccessLog::parse("{\"time\":1}", "f", LogFormat::FerryJson)
        .unwrap_err()
        .to_string();
    assert!(error.contains("line 1: not a JSON object"), "{error}");
}

/// Every second of `seconds`, three requests of 0.9 s each (Apache: logged at their start).
fn steady_log(seconds: u32) -> AccessLog {
    AccessLog::parse(&steady_log_text(seconds), "steady.log", FORMAT).unwrap()
}

fn steady_log_text(seconds: u32) -> String {
    let lines: Vec<String> = (0..seconds)
        .flat_map(|s| (0..3).map(move |_| s))
        .map(|s| {
            let (minute, second) = (s / 60, s % 60);
            format!(
                r#"h - - [30/Nov/2026:10:{minute:02}:{second:02} +0000] "GET / HTTP/1.1" 200 5 "-" "-" 900000"#
            )
        })
        .collect();
    lines.join("\n")
}

#[test]
fn a_replay_serves_each_request_for_its_logged_duration_the_same_every_time() {
    let log = steady_log(60);
    let pool = PoolSettings {
        max_pool_size: 3,
        min_instances: 3,
        ..PoolSettings::default()
    };
    let scenario = scenario_of_log(
        log.clone(),
        pool,
        &ReplayApp {
            spawn_time: SimDuration::from_millis(100),
            ..ReplayApp::default()
        },
    )
    .unwrap();
    let first = run(&scenario, 0, Some("steady.log"));
    let second = run(&scenario, 0, Some("steady.log"));
    assert_eq!(first.to_json(), second.to_json());
    assert_eq!(first.requests.arrived, 180);
    assert_eq!(first.requests.served, 180);
    // Three processes, at most three requests at once: nobody waits, each takes 0.9 s.
    // (The histogram keeps three significant figures.)
    for nanos in [
        first.latency.served.p50_nanos,
        first.latency.served.max_nanos,
    ] {
        let ms = nanos.unwrap() as f64 / 1e6;
        assert!((899.0..=901.0).contains(&ms), "{ms} ms");
    }
    let text = first.to_text();
    assert!(
        text.contains("replayed    180 requests from 180 lines of steady.log"),
        "{text}"
    );
}

#[test]
fn plan_picks_the_smallest_pool_that_keeps_up_and_the_cheaper_minimum() {
    // 2.7 requests in flight on average, 3 at most: two processes fall ever further behind,
    // three keep up. Spawning the second and third on demand delays only the first seconds'
    // requests, under 1%, so one minimum instance meets the target more cheaply than three.
    let log = steady_log(300);
    let options = PlanOptions {
        p99: SimDuration::from_secs(1),
        max_503_rate: 0.0,
        pool: PoolSettings::default(),
        app: ReplayApp {
            spawn_time: SimDuration::from_millis(200),
            ..ReplayApp::default()
        },
        min_instances: vec![1, 3],
        pool_idle_times: vec![SimDuration::from_secs(60)],
    };
    let result = plan(&log, &options);
    let best = result
        .recommended
        .clone()
        .expect("a setting meets the target");
    assert_eq!(
        best.setting(),
        "--min-instances 1 --max-pool-size 3 --pool-idle-time 60"
    );
    // The search saw that two processes cannot keep up.
    let two = result
        .trials
        .iter()
        .find(|t| t.max_pool_size == 2)
        .expect("max_pool_size 2 was tried");
    assert!(!two.meets, "{two:?}");
    // The picture is well-formed SVG with a point per replay.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steady.log");
    std::fs::write(&path, steady_log_text(300)).unwrap();
    let svg = dir.path().join("plan.svg");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = ferry_sim::run_plan(&path, &options, Some(&svg), &mut out, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let svg = std::fs::read_to_string(svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let circles = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert!(circles >= result.trials.len(), "{circles} circles");
    let text = result.to_text(&options, &log);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "recommended: --min-instances 1 --max-pool-size 3 --pool-idle-time 60"
    );
}

#[test]
fn a_scenario_file_names_a_log_relative_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("steady.log"), steady_log_text(20)).unwrap();
    let scenario = dir.path().join("replay.toml");
    let toml = "name = \"from-a-log\"\nduration = \"30s\"\n[pool]\nmin_instances = 3\nmax_pool_size = 3\n[replay]\nlog = \"steady.log\"\n[[expect]]\nserved = 60\n";
    std::fs::write(&scenario, toml).unwrap();
    let options = ferry_sim::SimOptions {
        scenario: Some(scenario.clone()),
        ..ferry_sim::SimOptions::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = ferry_sim::run_cli(&options, &mut out, &mut err);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("replayed    60 requests from 60 lines of"),
        "{out}"
    );
    // A log that is not there is an error naming the key.
    std::fs::remove_file(dir.path().join("steady.log")).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(ferry_sim::run_cli(&options, &mut out, &mut err), 2);
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("key `replay.log`") && err.contains("cannot read the access log"),
        "{err}"
    );
}

#[test]
fn a_client_that_left_the_real_queue_leaves_the_replays_queue_too() {
    // One process; a 1 s request at 0 s, then a client that waited 0.3 s in the queue and
    // went away (ferry logs a 499 with no pid). In the replay it waits behind the first
    // request and leaves at 0.4 s, as it did.
    let text = [
        r#"{"time":"2026-12-02T01:00:01.000Z","status":200,"request_time":1.0,"queue_time":0.0,"pid":7}"#,
        r#"{"time":"2026-12-02T01:00:00.400Z","status":499,"request_time":0.3,"queue_time":0.0,"pid":null}"#,
    ]
    .join("\n");
    let log = AccessLog::parse(&text, "gone.json", LogFormat::FerryJson).unwrap();
    let gone: Vec<Option<u64>> = log.requests.iter().map(|r| r.gone_after_nanos).collect();
    assert_eq!(gone, [None, Some(300_000_000)]);
    let pool = PoolSettings {
        max_pool_size: 1,
        min_instances: 1,
        ..PoolSettings::default()
    };
    let app = ReplayApp {
        spawn_time: SimDuration::from_millis(10),
        ..ReplayApp::default()
    };
    let report = run(&scenario_of_log(log, pool, &app).unwrap(), 0, None);
    let r = &report.requests;
    assert_eq!((r.arrived, r.served, r.cancelled), (2, 1, 1), "{r:?}");
}
