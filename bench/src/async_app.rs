//! A generic async app through ferry with its default flags (issue 11): tests/asyncapp's
//! asyncio server answers `/sleep?ms=N` after N ms without holding a thread, and reports its
//! pid. Twelve concurrent 1 s requests (how long they take together, on how many processes),
//! then closed-loop clients of 1 s requests for a while (how the pool grows under them).

use crate::servers::{self, Ctx, FerryStatus};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The concurrent requests of one trial, and how long the app holds each.
pub const CONCURRENT_REQUESTS: usize = 12;
pub const SLEEP_MS: u64 = 1000;
/// The heavier load: closed-loop clients of [`SLEEP_MS`] requests, for this long.
pub const HEAVY_CLIENTS: usize = 60;
pub const HEAVY_FOR: Duration = Duration::from_secs(20);
/// How often the pool is looked at while a load runs.
const POLL_EVERY: Duration = Duration::from_millis(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One trial of [`CONCURRENT_REQUESTS`] at once.
#[derive(Clone, Debug, Default)]
pub struct Concurrent {
    /// From the first request sent to the last answer.
    pub total_ms: f64,
    /// Distinct app pids that answered.
    pub pids: usize,
    /// The most requests one process had at once, as the app reports it.
    pub peak_in_flight: u64,
    /// The most processes the pool had meanwhile (spawning ones included).
    pub pool_max: usize,
    pub errors: usize,
}

/// The heavier load's run.
#[derive(Clone, Debug, Default)]
pub struct Heavy {
    pub served: usize,
    pub errors: usize,
    pub pids: usize,
    pub pool_max: usize,
    /// From the start of the load until the pool had 2 processes, and its most.
    pub second_process_ms: Option<f64>,
    pub pool_max_ms: Option<f64>,
    /// Processes every 5 s of the run.
    pub pool_every_5s: Vec<usize>,
}

fn asyncapp_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is inside the workspace")
        .join("tests/asyncapp")
}

/// `GET path` on a fresh connection: the status and the body.
fn get(port: u16, path: &str) -> Result<(u16, Vec<u8>), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {:?}", text.lines().next()))?;
    let body = match text.find("\r\n\r\n") {
        Some(at) => reply[at + 4..].to_vec(),
        None => Vec::new(),
    };
    Ok((status, body))
}

/// The app's JSON report from a 200 answer.
fn report(answer: Result<(u16, Vec<u8>), String>) -> Option<serde_json::Value> {
    match answer {
        Ok((200, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// Polls the pool's size on a thread until told to stop: (ms since start, processes).
struct PoolWatch {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<(f64, usize)>>,
}

impl PoolWatch {
    fn start(registry: &Path, t0: Instant) -> PoolWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, registry) = (Arc::clone(&stop), registry.to_path_buf());
        let thread = thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Ok(s) = FerryStatus::query(&registry) {
                    seen.push((t0.elapsed().as_secs_f64() * 1000.0, s.processes));
                }
                thread::sleep(POLL_EVERY);
            }
            seen
        });
        PoolWatch { stop, thread }
    }

    fn stop(self) -> Vec<(f64, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

fn start_ferry(ctx: &Ctx, name: &str) -> Result<servers::Running, String> {
    let dir = ctx.run_dir(name)?;
    let python = ctx.python().ok_or("python3 not found")?;
    let app = asyncapp_dir();
    let command = format!(
        "'{}' '{}'",
        python.display(),
        app.join("asyncapp.py").display()
    );
    let args = ["--app-start-command".to_string(), command];
    servers::run_ferry(ctx, &dir, &app, &args, 1)
}

/// `trials` rounds of [`CONCURRENT_REQUESTS`] at once on one ferry with default flags, the
/// pool back at rest (one process) between them.
pub fn concurrent(ctx: &Ctx, trials: usize) -> Result<Vec<Concurrent>, String> {
    let running = start_ferry(ctx, "ferry-async")?;
    let registry = running.dir.join("registry");
    let path = format!("/sleep?ms={SLEEP_MS}");
    let mut out = Vec::new();
    for _ in 0..trials {
        let t0 = Instant::now();
        let watch = PoolWatch::start(&registry, t0);
        let clients: Vec<_> = (0..CONCURRENT_REQUESTS)
            .map(|_| {
                let (port, path) = (running.port, path.clone());
                thread::spawn(move || (report(get(port, &path)), Instant::now()))
            })
            .collect();
        let answers: Vec<_> = clients.into_iter().filter_map(|c| c.join().ok()).collect();
        let seen = watch.stop();
        let last = answers.iter().map(|(_, at)| *at).max().unwrap_or(t0);
        let reports: Vec<_> = answers.iter().filter_map(|(r, _)| r.as_ref()).collect();
        let mut pids: Vec<u64> = reports.iter().filter_map(|r| r["pid"].as_u64()).collect();
        pids.sort_unstable();
        pids.dedup();
        out.push(Concurrent {
            total_ms: last.duration_since(t0).as_secs_f64() * 1000.0,
            pids: pids.len(),
            peak_in_flight: reports
                .iter()
                .filter_map(|r| r["peak_in_flight"].as_u64())
                .max()
                .unwrap_or(0),
            pool_max: seen.iter().map(|(_, n)| *n).max().unwrap_or(0),
            errors: CONCURRENT_REQUESTS - reports.len(),
        });
        thread::sleep(Duration::from_millis(500));
    }
    Ok(out)
}

/// [`HEAVY_CLIENTS`] closed-loop clients of 1 s requests for [`HEAVY_FOR`] on a fresh ferry
/// with default flags.
pub fn heavy(ctx: &Ctx) -> Result<Heavy, String> {
    let running = start_ferry(ctx, "ferry-async-heavy")?;
    let registry = running.dir.join("registry");
    let path = format!("/sleep?ms={SLEEP_MS}");
    let t0 = Instant::now();
    let watch = PoolWatch::start(&registry, t0);
    let clients: Vec<_> = (0..HEAVY_CLIENTS)
        .map(|_| {
            let (port, path) = (running.port, path.clone());
            thread::spawn(move || {
                let mut answers = Vec::new();
                while t0.elapsed() < HEAVY_FOR {
                    answers.push(report(get(port, &path)));
                }
                answers
            })
        })
        .collect();
    let answers: Vec<_> = clients
        .into_iter()
        .filter_map(|c| c.join().ok())
        .flatten()
        .collect();
    let seen = watch.stop();
    let mut pids: Vec<u64> = answers
        .iter()
        .flatten()
        .filter_map(|r| r["pid"].as_u64())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let pool_max = seen.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let every_5s = (1..=HEAVY_FOR.as_secs() / 5)
        .filter_map(|k| {
            let until = (k * 5000) as f64;
            seen.iter()
                .rev()
                .find(|(t, _)| *t <= until)
                .map(|(_, n)| *n)
        })
        .collect();
    Ok(Heavy {
        served: answers.iter().filter(|a| a.is_some()).count(),
        errors: answers.iter().filter(|a| a.is_none()).count(),
        pids: pids.len(),
        pool_max,
        second_process_ms: seen.iter().find(|(_, n)| *n >= 2).map(|(t, _)| *t),
        pool_max_ms: seen.iter().find(|(_, n)| *n == pool_max).map(|(t, _)| *t),
        pool_every_5s: every_5s,
    })
}
