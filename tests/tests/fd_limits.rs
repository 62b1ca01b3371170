//! ferry at its own file-descriptor limit: it keeps its app processes, answers again as soon
//! as descriptors are free, and its admin socket still answers. Each test lowers the limit of
//! the running server with `prlimit`.

use ferry_e2e::tempdir::TempDir;
use ferry_e2e::{get, testapp_args, wait_for, Ferry, HttpClient};
use rustix::process::{Pid, Resource, Rlimit};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the server's descriptor table")
        .count() as u64
}

/// The descriptor numbers the server has open, in order.
fn open_fds(pid: u32) -> Vec<u64> {
    let mut fds: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the server's descriptor table")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// A soft limit that leaves the server exactly `free` descriptors to open: a new descriptor
/// takes the lowest free number, which must be below the limit, so the limit is the number
/// of its `free + 1`-th free slot (the table may have holes).
fn limit_leaving(pid: u32, free: usize) -> u64 {
    let used = open_fds(pid);
    (0u64..)
        .filter(|n| used.binary_search(n).is_err())
        .nth(free)
        .expect("a free slot")
}

fn pid(ferry: &Ferry) -> Pid {
    Pid::from_raw(ferry.child.id() as i32).unwrap()
}

/// Sets the server's soft limit on open files; returns the limits it had.
fn set_soft_fd_limit(ferry: &Ferry, soft: u64) -> Rlimit {
    let old = rustix::process::prlimit(Some(pid(ferry)), Resource::Nofile, current(ferry))
        .expect("read the server's limit");
    let new = Rlimit {
        current: Some(soft),
        maximum: old.maximum,
    };
    rustix::process::prlimit(Some(pid(ferry)), Resource::Nofile, new).expect("set the limit");
    old
}

fn current(ferry: &Ferry) -> Rlimit {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", ferry.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<Option<u64>> = line
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(|n| n.parse().ok())
        .collect();
    Rlimit {
        current: numbers[0],
        maximum: numbers[1],
    }
}

/// One GET that gives up quickly (the server may not be accepting): the response's bytes.
fn try_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    (!response.is_empty()).then_some(response)
}

#[test]
fn running_out_of_descriptors_while_accepting_pauses_accepting_and_recovers() {
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let server = ferry.child.id();
    let base = fd_count(server);
    set_soft_fd_limit(&ferry, limit_leaving(server, 10));
    // More clients than the limit and the old listen backlog (128) together: the backlog
    // fills, and no event announces anything once it is full.
    let clients: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect_timeout(&ferry.addr(), Duration::from_millis(500)).ok())
        .collect();
    wait_for("ferry to reach its limit", LIMIT, || {
        (fd_count(server) >= base + 10).then_some(())
    });
    ferry.wait_output("accepting paused", LIMIT);
    drop(clients);
    let response = wait_for("ferry to answer again", LIMIT, || {
        try_get(ferry.addr(), "/pid")
    });
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    ferry.wait_output("Accepting connections again", LIMIT);
    // Nothing leaked: the clients' descriptors are all closed again (one kept-alive
    // connection to the app may stay).
    wait_for("the clients' descriptors to be closed", LIMIT, || {
        (fd_count(server) <= base + 1).then_some(())
    });
}

#[test]
fn running_out_of_descriptors_when_connecting_to_the_app_is_not_the_apps_fault() {
    let ferry = Ferry::start_testapp(&[], &[]);
    let app = ferry.wait_ready(1, LIMIT)[0];
    let server = ferry.child.id();
    // Room for the client's connection, none for ferry's connection to the app.
    let old = set_soft_fd_limit(&ferry, limit_leaving(server, 1));
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let response = client.get("/pid").unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.text().contains("ferry is out of resources"),
        "{}",
        response.text()
    );
    drop(client);
    set_soft_fd_limit(&ferry, old.current.unwrap());
    let response = get(ferry.addr(), "/pid").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        ferry_e2e::pid_of(&response),
        Some(app),
        "the healthy app process keeps serving"
    );
    assert_eq!(ferry.total("spawn_failures"), 0);
    assert_eq!(ferry.total("crashes"), 0);
    let output = ferry.output_text();
    assert!(!output.contains("refused a connection"), "{output}");
    assert!(output.contains("the process is not at fault"), "{output}");
}

#[test]
fn ferry_status_answers_at_the_descriptor_limit() {
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let server = ferry.child.id();
    let old = set_soft_fd_limit(&ferry, limit_leaving(server, 0));
    let out = ferry.ferry_command(&["status", "--port", &ferry.port.to_string()]);
    set_soft_fd_limit(&ferry, old.current.unwrap());
    assert!(
        out.status.success(),
        "ferry status at the limit: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And again afterwards: the reserve descriptor was taken back.
    let again = ferry.ferry_command(&["status", "--port", &ferry.port.to_string()]);
    assert!(again.status.success());
}

#[test]
fn ferry_raises_its_soft_descriptor_limit_to_the_hard_limit() {
    let hard = rustix::process::getrlimit(Resource::Nofile)
        .maximum
        .expect("a finite hard limit on open files");
    let soft = 256.min(hard);
    let ferry = Ferry::start_configured(
        Arc::new(TempDir::new("ferry-e2e")),
        &testapp_args(&[]),
        &[],
        move |command| {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe, and nothing else runs here.
            unsafe {
                command.pre_exec(move || {
                    let limit = Rlimit {
                        current: Some(soft),
                        maximum: Some(hard),
                    };
                    rustix::process::setrlimit(Resource::Nofile, limit).map_err(Into::into)
                });
            }
        },
    );
    let limit = current(&ferry);
    assert_eq!(limit.maximum, Some(hard));
    assert_eq!(
        limit.current,
        Some(hard),
        "started with a soft limit of {soft}"
    );
}

#[test]
fn the_listen_backlog_holds_a_burst_while_ferry_cannot_accept() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("read net.core.somaxconn")
        .trim()
        .parse()
        .unwrap();
    assert!(
        somaxconn >= 301,
        "net.core.somaxconn is {somaxconn}: the kernel caps every backlog below this test's 300"
    );
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::STOP);
    let connected = (0..300)
        .filter(|_| TcpStream::connect_timeout(&ferry.addr(), Duration::from_secs(2)).is_ok())
        .count();
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::CONT);
    assert_eq!(
        connected, 300,
        "the listen backlog (default 2048) must hold 300 connections"
    );
}

#[test]
fn a_zero_socket_backlog_is_refused_with_a_clear_error() {
    let registry = TempDir::new("ferry-e2e");
    let finished =
        ferry_e2e::run_ferry(&["start", "--socket-backlog", "0"], registry.path(), LIMIT);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("--socket-backlog"),
        "{}",
        finished.stderr
    );
}

#[test]
fn a_spawn_that_finds_no_descriptors_waits_for_them_without_counting_a_failure() {
    let ferry = Ferry::start_testapp(&[], &[]);
    let first = ferry.wait_ready(1, LIMIT)[0];
    let server = ferry.child.id();
    // The exit frees the process's three descriptors; starting its replacement needs more
    // (a port probe, two pipes, std's exec-error pipe, /dev/null).
    let old = set_soft_fd_limit(&ferry, limit_leaving(server, 0));
    ferry_e2e::signal(first, rustix::process::Signal::KILL);
    ferry.wait_output("cannot start an app process yet", LIMIT);
    set_soft_fd_limit(&ferry, old.current.unwrap());
    let replacement = wait_for("the replacement to be ready", LIMIT, || {
        ferry.pids_in("ready").into_iter().find(|pid| *pid != first)
    });
    let response = get(ferry.addr(), "/pid").unwrap();
    assert_eq!(ferry_e2e::pid_of(&response), Some(replacement));
    assert_eq!(
        ferry.total("spawn_failures"),
        0,
        "ferry's shortage is not the app's failure: {}",
        ferry.output_text()
    );
}
