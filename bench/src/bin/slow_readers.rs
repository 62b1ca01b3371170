//! ferry-slow-readers: ferry's memory while clients read large responses slowly.
//!
//! Starts `ferry start` with the test app, has `--clients` clients each GET
//! `/big?bytes=BYTES` and read it at `--rate` bytes per second (0: as fast as they can), and
//! samples ferry's resident memory every 100 ms for `--duration` seconds (or until every
//! client has its whole response). Prints the peak (VmHWM), the last sample, and how much of
//! the backlog sat in ferry's spill files on disk at the peak of that.
//!
//! The app sends at full speed, so within a second or two ferry holds nearly the whole
//! backlog: a run much shorter than the full read still sees the peak.
//!
//! Example (the figures in the README's reliability section):
//!   ferry-slow-readers --clients 4 --bytes 100000000 --rate 1000000 --duration 20
//!   ferry-slow-readers --clients 50 --bytes 10000000 --rate 1000 --duration 20
//!   ferry-slow-readers --clients 1 --bytes 200000000 --rate 0

use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "ferry-slow-readers")]
struct Opts {
    /// Clients reading at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    clients: u64,
    /// Bytes of each response.
    #[arg(long, default_value_t = 100_000_000)]
    bytes: u64,
    /// Bytes per second each client reads; 0 reads as fast as it can.
    #[arg(long, default_value_t = 1_000_000)]
    rate: u64,
    /// Seconds to measure (the run ends earlier once every client has its response).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// The ferry binary (default: `ferry` next to this program).
    #[arg(long)]
    ferry: Option<PathBuf>,
    /// The test app binary (default: `ferry-testapp` next to this program).
    #[arg(long)]
    testapp: Option<PathBuf>,
}

fn beside_me(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    me.parent().expect("a directory").join(name)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().unwrap().port()
}

/// A `/proc/PID/status` field in kB.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes in the deleted (anonymous temporary) files ferry holds open: its spill files.
fn spilled_bytes(pid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|target| target.to_string_lossy().ends_with("(deleted)"))
        })
        .filter_map(|e| std::fs::metadata(e.path()).ok())
        .map(|m| m.len())
        .sum()
}

fn start_ferry(opts: &Opts, registry: &std::path::Path, port: u16) -> Child {
    let ferry = opts.ferry.clone().unwrap_or_else(|| beside_me("ferry"));
    let testapp = opts
        .testapp
        .clone()
        .unwrap_or_else(|| beside_me("ferry-testapp"));
    let app_dir = registry.join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    Command::new(&ferry)
        .arg("start")
        .arg(&app_dir)
        .arg("--app-start-command")
        .arg(&testapp)
        .args(["--address", "127.0.0.1", "--port", &port.to_string()])
        .arg("--instance-registry-dir")
        .arg(registry)
        .args(["--environment", "production"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", ferry.display()))
}

/// One client: GET, then read at `rate` bytes per second through a small receive buffer,
/// so that the kernel does not read ahead for it.
fn client(addr: SocketAddr, bytes: u64, rate: u64, stop: Arc<AtomicBool>, got: Arc<AtomicU64>) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    let fd = rustix::fd::AsFd::as_fd(&stream);
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(fd, 64 * 1024);
    let mut stream = stream;
    let request =
        format!("GET /big?bytes={bytes} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let started = Instant::now();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let allowed = if rate == 0 {
            u64::MAX
        } else {
            (started.elapsed().as_secs_f64() * rate as f64) as u64 + 1024
        };
        if total >= allowed {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let room = (allowed - total).min(buf.len() as u64) as usize;
        match stream.read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                got.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

fn main() {
    let opts = Opts::parse();
    let registry = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let mut ferry = start_ferry(&opts, registry.path(), port);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_ok(addr).is_none() {
        assert!(
            Instant::now() < deadline,
            "ferry did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = ferry.id();
    let baseline_kb = status_kb(pid, "VmRSS:").unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..opts.clients)
        .map(|_| {
            let (stop, got) = (stop.clone(), got.clone());
            let (bytes, rate) = (opts.bytes, opts.rate);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || client(addr, bytes, rate, stop, got))
                .expect("a client thread")
        })
        .collect();
    let started = Instant::now();
    let (mut peak_rss_kb, mut peak_spill) = (0, 0);
    let total_bytes = opts.bytes * opts.clients;
    while started.elapsed() < Duration::from_secs(opts.duration)
        && got.load(Ordering::Relaxed) < total_bytes
    {
        std::thread::sleep(Duration::from_millis(100));
        peak_rss_kb = peak_rss_kb.max(status_kb(pid, "VmRSS:").unwrap_or(0));
        peak_spill = peak_spill.max(spilled_bytes(pid));
    }
    let hwm_kb = status_kb(pid, "VmHWM:").unwrap_or(0);
    let last_kb = status_kb(pid, "VmRSS:").unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
        rustix::process::Signal::TERM,
    );
    let _ = ferry.wait();
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "{} clients x {} MB at {}: peak RSS {:.1} MB (VmHWM {:.1} MB, idle {:.1} MB, last {:.1} MB); \
         clients read {:.1} MB in {elapsed:.1} s; spill files at most {:.1} MB",
        opts.clients,
        opts.bytes as f64 / 1e6,
        if opts.rate == 0 {
            "full speed".to_string()
        } else {
            format!("{} B/s", opts.rate)
        },
        mb(peak_rss_kb),
        mb(hwm_kb),
        mb(baseline_kb),
        mb(last_kb),
        got.load(Ordering::Relaxed) as f64 / 1e6,
        peak_spill as f64 / 1e6,
    );
}

/// Whether ferry answers a GET / with a status line yet.
fn get_ok(addr: SocketAddr) -> Option<()> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    head.starts_with(b"HTTP/1.1 200").then_some(())
}
