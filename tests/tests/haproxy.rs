//! Scale-out: two ferry instances behind a real HAProxy running the shipped configuration
//! (examples/haproxy/haproxy.cfg, only its addresses replaced). Under load through HAProxy,
//! one ferry is sent SIGTERM: its /ready turns 503, HAProxy takes it out of the rotation and
//! sends what it cannot deliver to the other (retries, redispatch), and no request fails.

use ferry_e2e::{free_port, get, pid_of, repo_root, wait_for, Ferry, Load};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// HAProxy, stopped when dropped.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy_bin() -> String {
    let found = ["haproxy", "/usr/sbin/haproxy"].into_iter().find(|bin| {
        Command::new(bin)
            .arg("-v")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    found
        .expect("haproxy is not installed: `apt-get install -y haproxy` (.ci/run installs it)")
        .to_string()
}

/// The shipped configuration with its addresses replaced by the test's.
fn configuration(front: SocketAddr, ferries: [(SocketAddr, SocketAddr); 2]) -> String {
    let path = repo_root().join("examples/haproxy/haproxy.cfg");
    let mut text = std::fs::read_to_string(&path).expect("examples/haproxy/haproxy.cfg");
    let mut replace = |from: &str, to: String| {
        assert!(
            text.contains(from),
            "{} no longer has `{from}`",
            path.display()
        );
        text = text.replace(from, &to);
    };
    replace("bind :80", format!("bind {front}"));
    for (index, (http, metrics)) in ferries.iter().enumerate() {
        replace(
            &format!("10.0.0.1{}:3000 port 9100", index + 1),
            format!("{http} port {}", metrics.port()),
        );
    }
    text
}

fn start_ferry() -> (Ferry, SocketAddr) {
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let address = metrics.to_string();
    let ferry = Ferry::start_testapp(
        &["--metrics-address", &address, "--min-instances", "2"],
        &[],
    );
    ferry.wait_ready(2, LIMIT);
    (ferry, metrics)
}

#[test]
fn a_ferry_stopped_under_load_behind_haproxy_fails_no_request() {
    let bin = haproxy_bin();
    let (mut first, first_metrics) = start_ferry();
    let (second, second_metrics) = start_ferry();
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = ferry_e2e::tempdir::TempDir::new("ferry-e2e-haproxy");
    let config = dir.path().join("haproxy.cfg");
    let text = configuration(
        front,
        [
            (first.addr(), first_metrics),
            (second.addr(), second_metrics),
        ],
    );
    std::fs::write(&config, text).unwrap();
    let check = Command::new(&bin)
        .args(["-c", "-q", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "haproxy refuses the configuration: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _haproxy = Haproxy(
        Command::new(&bin)
            .arg("-db") // in the foreground
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first_pids: HashSet<u32> = first.all_pids().into_iter().collect();
    // Both in the rotation: responses come from the processes of each.
    let mut seen = HashSet::new();
    wait_for("HAProxy to send requests to both ferries", LIMIT, || {
        let pid = get(front, "/pid").ok().and_then(|r| pid_of(&r))?;
        seen.insert(first_pids.contains(&pid));
        (seen.len() == 2).then_some(())
    });

    let loads: Vec<Load> = (0..4).map(|_| Load::start(front, "/sleep?ms=20")).collect();
    for load in &loads {
        load.wait_more(25, LIMIT);
    }
    ferry_e2e::signal(first.child.id(), rustix::process::Signal::TERM);
    assert_eq!(
        first.wait_exit(LIMIT).code(),
        Some(0),
        "{}",
        first.output_text()
    );
    for load in &loads {
        load.wait_more(25, LIMIT);
    }
    let outcomes: Vec<_> = loads.into_iter().flat_map(Load::stop).collect();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(r) if r.status == 200 => None,
            Ok(r) => Some(format!("{} {}", r.status, r.text())),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed through HAProxy; the first: {:?}",
        failed.len(),
        outcomes.len(),
        &failed[..failed.len().min(3)]
    );
    // The last requests all went to the ferry still running: none to a process the stopped
    // one ever started (its log names each).
    let first_output = first.output_text();
    let first_all: HashSet<u32> = first_output
        .lines()
        .filter_map(|l| l.split("Spawning app process ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(first_all.is_superset(&first_pids), "{first_output}");
    let tail_pids: HashSet<u32> = outcomes
        .iter()
        .rev()
        .take(20)
        .filter_map(|o| o.as_ref().ok().and_then(pid_of))
        .collect();
    assert!(
        !tail_pids.is_empty() && tail_pids.is_disjoint(&first_all),
        "after the stop, requests went to {tail_pids:?}; the stopped ferry had {first_all:?}"
    );
}
