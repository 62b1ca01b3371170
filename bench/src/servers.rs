//! Starting each server under test on loopback, one function per server.
//!
//! Every server runs in its own directory under the bench's temporary directory, with its
//! config written from the templates in bench/templates/. A [`Running`] stops everything it
//! started when dropped.

use crate::net::{free_port, wait_listening};
use crate::peers::{start_haproxy, start_nginx, start_passenger, start_passenger_wsgi};
use crate::procs::{self, Guard, ProcId};
use crate::wsgi_peers::{start_ferry_wsgi, start_granian, start_gunicorn, start_uwsgi};
use std::cell::Cell;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The WSGI app used when examples/hello-wsgi/passenger_wsgi.py is missing.
pub const FALLBACK_WSGI_APP: &str = include_str!("../templates/passenger_wsgi.py");

/// How long a server may take to come up (Passenger's Ruby front end is the slow one).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What every server setup needs.
pub struct Ctx {
    /// The bench's temporary directory; each server gets a directory inside.
    pub root: PathBuf,
    pub ferry: PathBuf,
    pub testapp: PathBuf,
    /// App processes behind each proxy.
    pub apps: usize,
    /// The WSGI startup file every WSGI server loads.
    pub wsgi_file: PathBuf,
    /// The bench's own virtual environment (bench/.venv, made by bench/install.sh): Granian,
    /// uWSGI, gunicorn and Flask; its Python runs every WSGI server, ferry's loader included.
    pub venv: PathBuf,
    seq: Cell<u32>,
}

impl Ctx {
    pub fn new(
        root: PathBuf,
        ferry: PathBuf,
        testapp: PathBuf,
        apps: usize,
        wsgi_file: PathBuf,
        venv: PathBuf,
    ) -> Ctx {
        Ctx {
            root,
            ferry,
            testapp,
            apps,
            wsgi_file,
            venv,
            seq: Cell::new(0),
        }
    }

    /// The same setup serving another WSGI startup file, in its own subdirectory.
    pub fn with_wsgi_file(&self, wsgi_file: PathBuf, name: &str) -> Result<Ctx, String> {
        let root = self.root.join(name);
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        Ok(Ctx::new(
            root,
            self.ferry.clone(),
            self.testapp.clone(),
            self.apps,
            wsgi_file,
            self.venv.clone(),
        ))
    }

    /// A program of the bench's virtual environment, if installed.
    pub fn venv_bin(&self, program: &str) -> Option<PathBuf> {
        let path = self.venv.join("bin").join(program);
        path.is_file().then_some(path)
    }

    /// The Python every WSGI server runs: the bench venv's, else python3 on PATH.
    pub fn python(&self) -> Option<PathBuf> {
        self.venv_bin("python").or_else(|| which("python3"))
    }

    /// A fresh directory for one run of one server.
    pub fn run_dir(&self, name: &str) -> Result<PathBuf, String> {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let dir = self.root.join(format!("{n:03}-{name}"));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// wrk straight at one testapp.
    Direct,
    Ferry {
        concurrency: u32,
        /// With `--access-log` to a file in the run's directory.
        access_log: bool,
    },
    Haproxy,
    /// ferry --ssl --concurrency 0.
    FerryTls,
    /// HAProxy terminating TLS with the same kind of certificate.
    HaproxyTls,
    Nginx,
    Passenger,
    /// ferry's WSGI loader; `concurrency` is its `--concurrency` (1, the WSGI default, or 2:
    /// each process is handed the next request while it serves one); `threads` > 0 is the
    /// thread model with that `--thread-count`.
    FerryWsgi {
        concurrency: u32,
        threads: u32,
    },
    PassengerWsgi,
    /// The Python servers with `threads` per worker process (0: their default, none).
    Gunicorn {
        threads: u32,
    },
    Granian {
        threads: u32,
    },
    Uwsgi {
        threads: u32,
    },
}

impl Server {
    pub fn label(&self) -> String {
        match self {
            Server::Direct => "direct (1 testapp)".into(),
            Server::Ferry {
                concurrency,
                access_log,
            } => {
                let log = if *access_log { " --access-log" } else { "" };
                format!("ferry --concurrency {concurrency}{log}")
            }
            Server::Haproxy => "HAProxy".into(),
            Server::FerryTls => "ferry --ssl --concurrency 0".into(),
            Server::HaproxyTls => "HAProxy (TLS)".into(),
            Server::Nginx => "nginx".into(),
            Server::Passenger => "Passenger".into(),
            Server::FerryWsgi {
                concurrency: 1,
                threads: 0,
            } => "ferry (wsgi loader)".into(),
            Server::FerryWsgi {
                concurrency,
                threads: 0,
            } => format!("ferry (wsgi loader) --concurrency {concurrency}"),
            Server::FerryWsgi { threads, .. } => {
                format!("ferry (wsgi loader) --thread-count {threads}")
            }
            Server::PassengerWsgi => "Passenger (wsgi)".into(),
            Server::Gunicorn { threads: 0 } => "gunicorn (sync)".into(),
            Server::Gunicorn { threads } => format!("gunicorn (gthread) --threads {threads}"),
            Server::Granian { threads: 0 } => "Granian".into(),
            Server::Granian { threads } => format!("Granian --blocking-threads {threads}"),
            Server::Uwsgi { threads: 0 } => "uWSGI".into(),
            Server::Uwsgi { threads } => format!("uWSGI --threads {threads}"),
        }
    }

    /// Short name for --servers and directory names.
    pub fn key(&self) -> String {
        match self {
            Server::Direct => "direct".into(),
            Server::Ferry {
                concurrency,
                access_log,
            } => {
                let log = if *access_log { "-log" } else { "" };
                format!("ferry-c{concurrency}{log}")
            }
            Server::Haproxy => "haproxy".into(),
            Server::FerryTls => "ferry-tls".into(),
            Server::HaproxyTls => "haproxy-tls".into(),
            Server::Nginx => "nginx".into(),
            Server::Passenger => "passenger".into(),
            Server::FerryWsgi {
                concurrency: 1,
                threads: 0,
            } => "ferry-wsgi".into(),
            Server::FerryWsgi {
                concurrency,
                threads: 0,
            } => format!("ferry-wsgi-c{concurrency}"),
            Server::FerryWsgi { threads, .. } => format!("ferry-wsgi-t{threads}"),
            Server::PassengerWsgi => "passenger-wsgi".into(),
            Server::Gunicorn { threads: 0 } => "gunicorn".into(),
            Server::Gunicorn { threads } => format!("gunicorn-t{threads}"),
            Server::Granian { threads: 0 } => "granian".into(),
            Server::Granian { threads } => format!("granian-t{threads}"),
            Server::Uwsgi { threads: 0 } => "uwsgi".into(),
            Server::Uwsgi { threads } => format!("uwsgi-t{threads}"),
        }
    }

    /// Which processes the RSS column covers.
    pub fn rss_note(&self) -> &'static str {
        match self {
            Server::Direct => "",
            Server::Ferry { .. } | Server::FerryWsgi { .. } | Server::FerryTls => "ferry's pid",
            Server::Haproxy | Server::HaproxyTls => "haproxy",
            Server::Nginx => "master + worker",
            Server::Passenger | Server::PassengerWsgi => "core + watchdog",
            Server::Gunicorn { .. } | Server::Uwsgi { .. } => "arbiter only",
            Server::Granian { .. } => "main process only",
        }
    }

    /// Why this server cannot run here, if it cannot.
    pub fn missing(&self, ctx: &Ctx) -> Option<String> {
        let (system, venv): (&[&str], &[&str]) = match self {
            Server::Direct | Server::Ferry { .. } | Server::FerryWsgi { .. } => (&[], &[]),
            Server::Haproxy => (&["haproxy"], &[]),
            Server::FerryTls => (&["openssl"], &[]),
            Server::HaproxyTls => (&["haproxy", "openssl"], &[]),
            Server::Nginx => (&["nginx"], &[]),
            Server::Passenger | Server::PassengerWsgi => (&["passenger"], &[]),
            Server::Gunicorn { .. } => (&[], &["gunicorn"]),
            Server::Granian { .. } => (&[], &["granian"]),
            Server::Uwsgi { .. } => (&[], &["uwsgi"]),
        };
        let mut absent: Vec<String> = system
            .iter()
            .filter(|b| which(b).is_none())
            .map(|b| b.to_string())
            .collect();
        absent.extend(
            venv.iter()
                .filter(|b| ctx.venv_bin(b).is_none())
                .map(|b| format!("{b} (in {})", ctx.venv.display())),
        );
        if self.is_wsgi() && ctx.python().is_none() {
            absent.push("python3".into());
        }
        (!absent.is_empty()).then(|| format!("{} not installed", absent.join(", ")))
    }

    /// Serves the WSGI startup file (with the bench venv's Python) rather than the testapp.
    pub fn is_wsgi(&self) -> bool {
        matches!(
            self,
            Server::FerryWsgi { .. }
                | Server::PassengerWsgi
                | Server::Gunicorn { .. }
                | Server::Granian { .. }
                | Server::Uwsgi { .. }
        )
    }

    pub fn start(&self, ctx: &Ctx) -> Result<Running, String> {
        let dir = ctx.run_dir(&self.key())?;
        let mut running = match self {
            Server::Direct => start_direct(ctx, &dir),
            Server::Ferry {
                concurrency,
                access_log,
            } => start_ferry(ctx, &dir, *concurrency, *access_log),
            Server::Haproxy => start_haproxy(ctx, &dir),
            Server::FerryTls => crate::https::start_ferry_tls(ctx, &dir),
            Server::HaproxyTls => crate::https::start_haproxy_tls(ctx, &dir),
            Server::Nginx => start_nginx(ctx, &dir),
            Server::Passenger => start_passenger(ctx, &dir),
            Server::FerryWsgi {
                concurrency,
                threads,
            } => start_ferry_wsgi(ctx, &dir, *concurrency, *threads),
            Server::PassengerWsgi => start_passenger_wsgi(ctx, &dir),
            Server::Gunicorn { threads } => start_gunicorn(ctx, &dir, *threads),
            Server::Granian { threads } => start_granian(ctx, &dir, *threads),
            Server::Uwsgi { threads } => start_uwsgi(ctx, &dir, *threads),
        }?;
        running.label = self.label();
        Ok(running)
    }
}

/// The full path of `program` on $PATH (plus the sbin directories, where haproxy and nginx
/// live).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// A server under test, stopped with everything it started when dropped.
pub struct Running {
    pub label: String,
    pub port: u16,
    /// `http`, or `https` for a server terminating TLS.
    pub scheme: &'static str,
    /// The processes whose memory is reported (the proxy's own, never the apps').
    pub proxy_pids: Vec<u32>,
    pub dir: PathBuf,
    /// Passenger's core, whose children are the app processes.
    pub passenger_core: Option<u32>,
    /// Processes started here, in start order; stopped in reverse order.
    pub(crate) guards: Vec<Guard>,
    /// Daemons that are not our children (Passenger's watchdog and core).
    pub(crate) extra: Vec<ProcId>,
}

impl Running {
    pub(crate) fn new(port: u16, dir: &Path, guards: Vec<Guard>) -> Running {
        Running {
            label: String::new(),
            port,
            scheme: "http",
            proxy_pids: Vec::new(),
            dir: dir.to_path_buf(),
            passenger_core: None,
            guards,
            extra: Vec::new(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut roots: Vec<u32> = self.guards.iter().map(Guard::pid).collect();
        roots.extend(self.extra.iter().map(|p| p.pid));
        let mut tracked: Vec<ProcId> = procs::descendants(&roots)
            .into_iter()
            .filter_map(ProcId::of)
            .collect();
        tracked.extend(self.extra.iter().copied());
        while let Some(mut guard) = self.guards.pop() {
            guard.stop();
        }
        // What the stopped processes started should go with them; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while tracked.iter().any(ProcId::alive) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        for p in tracked.iter().filter(|p| p.alive()) {
            eprintln!(
                "ferry-bench: process {} outlived {}; killing it",
                p.pid, self.label
            );
            p.kill();
        }
        for pid in procs::mentioning(&self.dir) {
            if let Some(p) = ProcId::of(pid) {
                p.kill();
            }
        }
    }
}

pub(crate) fn log_file(path: &Path) -> Result<(Stdio, Stdio), String> {
    let f = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let g = f.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

/// The last lines of a log, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn with_log<T>(r: Result<T, String>, log: &Path) -> Result<T, String> {
    r.map_err(|e| format!("{e}\n--- {} ---\n{}", log.display(), tail(log, 15)))
}

/// Starts `n` testapps on fresh ports and waits until each listens.
pub(crate) fn start_testapps(
    ctx: &Ctx,
    dir: &Path,
    n: usize,
    guards: &mut Vec<Guard>,
) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for i in 0..n {
        let port = free_port()?;
        let log = dir.join(format!("testapp-{i}.log"));
        let (out, err) = log_file(&log)?;
        let mut cmd = Command::new(&ctx.testapp);
        cmd.env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut guard = Guard::spawn(&format!("testapp {i}"), &mut cmd)?;
        with_log(
            wait_listening(port, &mut guard, Duration::from_secs(10)),
            &log,
        )?;
        guards.push(guard);
        ports.push(port);
    }
    Ok(ports)
}

fn start_direct(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let mut guards = Vec::new();
    let ports = start_testapps(ctx, dir, 1, &mut guards)?;
    Ok(Running::new(ports[0], dir, guards))
}

fn ferry_command(ctx: &Ctx, dir: &Path, app: &Path, port: u16, args: &[String]) -> Command {
    let mut cmd = Command::new(&ctx.ferry);
    cmd.arg("start")
        .arg(app)
        .args(["--port", &port.to_string(), "--address", "127.0.0.1"])
        .arg("--instance-registry-dir")
        .arg(dir.join("registry"))
        .arg("--log-file")
        .arg(dir.join("ferry.log"))
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Starts ferry and waits until `processes` app processes are ready.
pub(crate) fn run_ferry(
    ctx: &Ctx,
    dir: &Path,
    app: &Path,
    args: &[String],
    processes: usize,
) -> Result<Running, String> {
    let port = free_port()?;
    let out_log = dir.join("ferry.out");
    let (out, err) = log_file(&out_log)?;
    let mut cmd = ferry_command(ctx, dir, app, port, args);
    cmd.stdout(out).stderr(err);
    let mut guard = Guard::spawn("ferry", &mut cmd)?;
    let log = dir.join("ferry.log");
    let registry = dir.join("registry");
    let ready = wait_listening(port, &mut guard, START_TIMEOUT).and_then(|()| {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = guard.exited() {
                return Err(format!("ferry exited ({status})"));
            }
            if let Ok(s) = FerryStatus::query(&registry) {
                if s.ready >= processes {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ferry's {processes} app processes not ready in time"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    with_log(ready, &log)?;
    let pid = guard.pid();
    let mut running = Running::new(port, dir, vec![guard]);
    running.proxy_pids = vec![pid];
    Ok(running)
}

fn start_ferry(
    ctx: &Ctx,
    dir: &Path,
    concurrency: u32,
    access_log: bool,
) -> Result<Running, String> {
    let command = ctx.testapp.to_string_lossy().into_owned();
    let concurrency = concurrency.to_string();
    let log = dir.join("access.log").display().to_string();
    let mut extra = vec!["--concurrency", &concurrency];
    if access_log {
        extra.extend(["--access-log", &log]);
    }
    ferry_generic(ctx, dir, &command, ctx.apps, ctx.apps, &extra)
}

/// ferry serving the generic app `command` with a pool of `min`..=`max` processes and an
/// unlimited request queue; returns once `min` processes are ready.
pub fn ferry_generic(
    ctx: &Ctx,
    dir: &Path,
    command: &str,
    min: usize,
    max: usize,
    extra: &[&str],
) -> Result<Running, String> {
    let app = dir.join("app");
    fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    let mut args = vec!["--app-start-command", command];
    args.extend_from_slice(extra);
    ferry_pool(ctx, dir, &app, min, max, &args)
}

/// Copies the WSGI startup file into a fresh app directory.
pub(crate) fn wsgi_app_dir(ctx: &Ctx, dir: &Path) -> Result<PathBuf, String> {
    let app = dir.join("app");
    fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    fs::copy(&ctx.wsgi_file, app.join("passenger_wsgi.py"))
        .map_err(|e| format!("cannot copy {}: {e}", ctx.wsgi_file.display()))?;
    Ok(app)
}

/// ferry serving the WSGI startup file with a pool of `min`..=`max` processes and an
/// unlimited request queue; returns once `min` processes are ready.
pub fn ferry_wsgi(
    ctx: &Ctx,
    dir: &Path,
    min: usize,
    max: usize,
    extra: &[&str],
) -> Result<Running, String> {
    let app = wsgi_app_dir(ctx, dir)?;
    let python = ctx.python().ok_or("python3 not found")?;
    let python = python.to_string_lossy().into_owned();
    let mut args = vec!["--python", python.as_str()];
    args.extend_from_slice(extra);
    ferry_pool(ctx, dir, &app, min, max, &args)
}

/// ferry on `app` with `args`, a pool of `min`..=`max` processes and an unlimited request
/// queue; returns once `min` processes are ready.
pub(crate) fn ferry_pool(
    ctx: &Ctx,
    dir: &Path,
    app: &Path,
    min: usize,
    max: usize,
    args: &[&str],
) -> Result<Running, String> {
    let (min_s, max_s) = (min.to_string(), max.to_string());
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for (flag, value) in [
        ("--min-instances", min_s.as_str()),
        ("--max-pool-size", &max_s),
        ("--max-request-queue-size", "0"),
    ] {
        all.extend([flag.to_string(), value.to_string()]);
    }
    run_ferry(ctx, dir, app, &all, min)
}

/// The part of `ferry status --json` the bench uses, read straight from the admin socket
/// (what `ferry status --json` does, without starting a process per poll).
#[derive(Clone, Debug, Default)]
pub struct FerryStatus {
    /// App processes in the pool, spawning ones included.
    pub processes: usize,
    pub ready: usize,
    /// (pid, state) of each process.
    pub pids: Vec<(u32, String)>,
}

impl FerryStatus {
    pub fn query(registry: &Path) -> Result<FerryStatus, String> {
        let socket = fs::read_dir(registry)
            .map_err(|e| format!("no registry {}: {e}", registry.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("admin.sock"))
            .find(|p| p.exists())
            .ok_or("no ferry instance registered")?;
        let mut stream = UnixStream::connect(&socket).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        stream.write_all(b"status\n").map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("bad status reply: {e}: {}", String::from_utf8_lossy(&reply)))?;
        let mut s = FerryStatus::default();
        for group in v["groups"].as_array().into_iter().flatten() {
            for p in group["processes"].as_array().into_iter().flatten() {
                let state = p["state"].as_str().unwrap_or("").to_string();
                s.processes += 1;
                if state == "ready" {
                    s.ready += 1;
                }
                if let Some(pid) = p["pid"].as_u64() {
                    s.pids.push((pid as u32, state));
                }
            }
        }
        Ok(s)
    }
}
