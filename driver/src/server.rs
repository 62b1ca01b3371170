//! `ferry start`: the mio event loop that feeds real events to the engine and carries out its
//! commands. Nothing here decides anything about the pool.

use crate::app::{App, AppKind, BackendAddr, WSGI_LOADER};
use crate::backend::Backend;
use crate::children::{self, AppProcess};
use crate::cli::StartArgs;
use crate::client::Client;
use crate::clock::Clock;
use crate::instance::{InstanceDir, InstanceInfo};
use crate::listeners::{Listener, Planned};
use crate::log::Log;
use crate::resources::{is_exhaustion, AcceptPause, ReserveFd};
use ferry_engine::{
    Command, Config, Engine, GroupConfig, GroupId, Input, PoolConfig, ProcessId, RequestId,
};
use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const ADMIN: Token = Token(1);
pub const SIGNALS: Token = Token(2);
/// How long responses already written may take to reach slow clients after shutdown.
const FINAL_FLUSH_TIME: Duration = Duration::from_secs(5);

/// Tokens from here on index `Server::entries`.
const FIRST_ENTRY: usize = 16;

pub fn token_of(key: usize) -> Token {
    Token(key + FIRST_ENTRY)
}

/// What a token stands for.
pub enum Entry {
    Client(Box<Client>),
    Backend(Box<Backend>),
    /// The pidfd of an app process: readable once it exits.
    ProcessExit(ProcessId),
    ProcessOutput(ProcessId, OutputStream),
    Admin(crate::admin::AdminConn),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// A connection whose output is to be written at the end of the current round of events.
#[derive(Clone, Copy)]
pub enum Flush {
    Client(usize),
    Backend(usize),
}

/// An app process the engine knows, with the OS resources that go with it.
pub struct Child {
    pub process: AppProcess,
    pub exit_key: usize,
    pub output_keys: Vec<usize>,
    /// While spawning: when to next try connecting, and the pause after that.
    pub probe: Option<(std::time::Instant, Duration)>,
    /// Open keep-alive connections to it, not in use.
    pub idle_backends: Vec<usize>,
    /// The last lines it printed while starting: why it failed to start, for the error page.
    pub startup_output: VecDeque<String>,
}

/// Lines of a starting process's output kept for its spawn error.
const STARTUP_OUTPUT_LINES: usize = 5;

/// Settings of the proxy that are not the engine's.
pub struct ProxySettings {
    pub limits: crate::http::Limits,
    /// Total time a client has to send a request head, from its first byte.
    pub head_timeout: Duration,
    /// How long an idle keep-alive client connection stays open.
    pub keep_alive_timeout: Duration,
    /// How long a request body may stall.
    pub body_timeout: Duration,
    /// How long a response may wait for a client that does not read.
    pub send_timeout: Duration,
    /// Clients see why the app cannot start (friendly error pages).
    pub error_details: bool,
    /// Peers whose forwarding fields are kept (--forwarded-allow-ips).
    pub trusted_proxies: crate::trusted_proxies::TrustedProxies,
}

pub struct Server {
    pub poll: Poll,
    pub engine: Engine,
    pub clock: Clock,
    /// `--port`, and `--ssl-port` if given; empty once stopping.
    pub listeners: Vec<Listener>,
    pub admin: UnixListener,
    pub signals: signal_hook_mio::v1_0::Signals,
    pub entries: Slab<Entry>,
    pub children: BTreeMap<ProcessId, Child>,
    /// The client connection of each request the engine knows.
    pub requests: HashMap<RequestId, usize>,
    pub next_request_id: u64,
    pub inputs: VecDeque<Input>,
    pub app: App,
    pub group: GroupId,
    pub instance: InstanceDir,
    pub info: InstanceInfo,
    pub loader_path: PathBuf,
    /// Where app processes make their sockets (see `app_user::process_dir`).
    pub process_dir: PathBuf,
    pub log: Log,
    pub settings: ProxySettings,
    pub stopping: bool,
    pub shutdown_complete: bool,
    /// Where request bodies and response backlogs too large for memory go: the instance
    /// directory, private to the server's user and removed at exit.
    pub spill_dir: std::sync::Arc<std::path::Path>,
    /// Output written during this round of events, sent at its end: one write per
    /// connection per round, and the app processes it wakes run after ferry has handled
    /// everything that was ready, not in the middle of it.
    pub pending_flushes: Vec<Flush>,
    /// Files answered by ferry itself: `--static-files-dir`, else `APP_DIR/public`.
    pub static_dir: Option<crate::static_files::StaticDir>,
    /// Looks for `tmp/restart.txt` and, with `--reload`, the app's Python files.
    pub watcher: crate::reload::Watcher,
    /// Client connections with a deadline, by deadline.
    pub deadlines: std::collections::BTreeSet<(std::time::Instant, usize)>,
    /// Accepting paused: ferry ran out of descriptors or memory.
    pub accept_pause: AcceptPause,
    /// A descriptor kept free for the admin socket, so `ferry status` answers at the limit.
    pub reserve_fd: ReserveFd,
    /// Stops what app processes leave behind if ferry dies (see `watchdog`).
    pub watchdog: Option<crate::watchdog::Watchdog>,
    /// Spawns that found ferry out of descriptors or memory, and when to try each again.
    pub spawn_retries: BTreeMap<ProcessId, std::time::Instant>,
    /// The access log, the metrics listener, systemd's notifications.
    pub observer: crate::observer::Observer,
}

fn engine_config(args: &StartArgs, app: &App) -> Config {
    let (concurrency, target_concurrency) = app.concurrency(args);
    Config {
        pool: PoolConfig {
            max_pool_size: args.max_pool_size,
            pool_idle_time: Duration::from_secs(args.pool_idle_time),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
            ..PoolConfig::default()
        },
        groups: vec![GroupConfig {
            name: app.root.display().to_string(),
            min_instances: args.min_instances,
            concurrency,
            target_concurrency,
            max_request_queue_size: args.max_request_queue_size,
            max_requests: args.max_requests,
            max_spawn_concurrency: args.max_spawn_concurrency,
            start_timeout: Duration::from_secs(args.start_timeout),
            max_request_time: Duration::from_secs(args.max_request_time),
            max_request_queue_time: Duration::from_secs(args.max_request_queue_time),
        }],
    }
}

/// A configuration error in the words of `ferry start`'s flags.
fn flag_error(error: &ferry_engine::ConfigError) -> String {
    use ferry_engine::ConfigError as E;
    match error {
        E::MinAboveMax {
            min_instances,
            max_pool_size,
            ..
        }
        | E::MinSumAboveMax {
            min_instances_total: min_instances,
            max_pool_size,
        } => format!(
            "--min-instances ({min_instances}) must not be above --max-pool-size ({max_pool_size})"
        ),
        E::ZeroMaxPoolSize => "--max-pool-size must be at least 1".to_string(),
        E::ZeroSpawnConcurrency { .. } => "--max-spawn-concurrency must be at least 1".to_string(),
        E::ZeroTargetConcurrency { .. } => "--target-concurrency must be at least 1".to_string(),
        E::TargetAboveConcurrency {
            target_concurrency,
            concurrency,
            ..
        } => format!(
            "--target-concurrency ({target_concurrency}) must not be above --concurrency ({concurrency}); lower it, or give --concurrency 0 (unlimited)"
        ),
        other => other.to_string(),
    }
}

/// Why ferry cannot listen; for a port in use, which ferry instance holds it when one does.
fn listen_error(
    address: &str,
    port: u16,
    error: &std::io::Error,
    registry: &std::path::Path,
) -> String {
    if error.kind() != std::io::ErrorKind::AddrInUse {
        return format!("cannot listen on {address}: {error}");
    }
    let holder = crate::instance::find_instances(registry)
        .into_iter()
        .find(|found| found.info.port == port);
    match holder {
        Some(found) => format!(
            "cannot listen on {address}: port {port} is already in use by ferry instance {} \
             (pid {}, app {}); stop it with `ferry stop --port {port}` or choose another --port",
            found.info.instance, found.info.pid, found.info.app_root
        ),
        None => format!(
            "cannot listen on {address}: port {port} is already in use by another program \
             (no ferry instance in {} has it); choose another --port",
            registry.display()
        ),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("ferry: {message}");
    ExitCode::from(code)
}

/// `ferry start`: returns when the server has stopped.
pub fn start(args: StartArgs, registry: PathBuf) -> ExitCode {
    let mut app = match App::detect(&args) {
        Ok(app) => app,
        Err(message) => return fail(2, &message),
    };
    match crate::app_user::resolve_here(args.user.as_deref()) {
        Ok((user, warning)) => {
            app.user = user;
            if let Some(warning) = warning {
                eprintln!("ferry: warning: {warning}");
            }
        }
        Err(message) => return fail(2, &message),
    }
    let config = engine_config(&args, &app);
    if let Err(e) = config.validate() {
        return fail(2, &flag_error(&e));
    }
    let tls = match crate::listeners::tls_config(&args) {
        Ok(tls) => tls,
        Err(message) => return fail(2, &message),
    };
    if args.daemonize && !crate::daemon::is_daemon_child() {
        return crate::daemon::run_in_background(&args, &app.root, &registry);
    }
    crate::resources::raise_fd_limit();
    let mut listeners = Vec::new();
    for (wanted_port, tls) in crate::listeners::plan(&args, tls) {
        let address = match args.address.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, wanted_port).to_string(),
            Err(_) => format!("{}:{}", args.address, wanted_port),
        };
        let socket = match crate::resources::bind_listener(&address, args.socket_backlog) {
            Ok(listener) => listener,
            Err(e) => return fail(1, &listen_error(&address, wanted_port, &e, &registry)),
        };
        let port = socket.local_addr().map_or(wanted_port, |a| a.port());
        listeners.push(Planned { socket, tls, port });
    }
    let port = listeners[0].port;
    let _pid_file = match args.pid_file.as_deref().map(crate::daemon::PidFile::create) {
        Some(Err(message)) => return fail(1, &message),
        created => created.map(Result::ok),
    };
    match Server::new(args, app, config, listeners, port, registry) {
        Ok(mut server) => {
            let code = server.run();
            server.instance.remove();
            code
        }
        Err(message) => fail(1, &message),
    }
}

impl Server {
    fn new(
        args: StartArgs,
        app: App,
        config: Config,
        planned: Vec<Planned>,
        port: u16,
        registry: PathBuf,
    ) -> Result<Server, String> {
        let pid = std::process::id();
        let info = InstanceInfo {
            instance: pid.to_string(),
            pid,
            port,
            address: args.address.clone(),
            app_root: app.root.display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let instance = InstanceDir::create(&registry, &info).map_err(|e| {
            format!(
                "cannot create the instance directory in {}: {e}",
                registry.display()
            )
        })?;
        let process_dir = crate::app_user::process_dir(&instance.path, app.user.as_ref())
            .map_err(|e| format!("cannot prepare a directory for --user's processes: {e}"))?;
        let loader_path = process_dir.join("wsgi_loader.py");
        if matches!(app.kind, AppKind::Wsgi { .. }) {
            std::fs::write(&loader_path, WSGI_LOADER)
                .map_err(|e| format!("cannot write the WSGI loader: {e}"))?;
        }
        let log = Log::open(args.log_file.as_deref(), args.log_level).map_err(|e| {
            format!(
                "cannot open the log file {}: {e}",
                args.log_file.as_ref().unwrap().display()
            )
        })?;
        let poll = Poll::new().map_err(|e| e.to_string())?;
        let mut listeners = Vec::new();
        for (planned, token) in planned.into_iter().zip(crate::listeners::TOKENS) {
            planned
                .socket
                .set_nonblocking(true)
                .map_err(|e| e.to_string())?;
            let mut socket = mio::net::TcpListener::from_std(planned.socket);
            poll.registry()
                .register(&mut socket, token, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            let (tls, port) = (planned.tls, planned.port);
            listeners.push(Listener { socket, tls, port });
        }
        // Before the admin socket: once `ferry status` answers, the metrics address does too.
        let observer = crate::observer::Observer::new(&args, poll.registry())?;
        let admin_path = instance.admin_socket();
        let mut admin = UnixListener::bind(&admin_path)
            .map_err(|e| format!("cannot create the admin socket: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&admin_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        poll.registry()
            .register(&mut admin, ADMIN, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGUSR1,
        ])
        .map_err(|e| e.to_string())?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let clock = Clock::start();
        let engine = Engine::new(config, clock.now()).map_err(|e| e.to_string())?;
        let settings = ProxySettings {
            limits: crate::http::Limits {
                max_body_size: args.max_body_size,
                ..Default::default()
            },
            head_timeout: Duration::from_secs(args.header_timeout),
            keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            send_timeout: Duration::from_secs(args.send_timeout),
            error_details: args.friendly_error_pages(),
            trusted_proxies: args.forwarded_allow_ips.clone(),
        };
        let static_dir = match &args.static_files_dir {
            Some(dir) => Some(crate::static_files::StaticDir::open(dir).ok_or_else(|| {
                format!(
                    "--static-files-dir {} is not a directory; give one that exists",
                    dir.display()
                )
            })?),
            None => crate::static_files::StaticDir::open(&app.root.join("public")),
        };
        let instance_path = instance.path.clone();
        let restart_dir = args
            .restart_dir
            .clone()
            .unwrap_or_else(|| app.root.join("tmp"));
        let watcher = crate::reload::Watcher::new(
            &restart_dir,
            &app.root,
            args.reload,
            std::time::Instant::now(),
        );
        let mut server = Server {
            poll,
            engine,
            clock,
            listeners,
            admin,
            signals,
            entries: Slab::new(),
            children: BTreeMap::new(),
            requests: HashMap::new(),
            next_request_id: 1,
            inputs: VecDeque::new(),
            app,
            group: GroupId(0),
            instance,
            info,
            loader_path,
            process_dir,
            log,
            settings,
            stopping: false,
            shutdown_complete: false,
            deadlines: Default::default(),
            watcher,
            static_dir,
            pending_flushes: Vec::new(),
            spill_dir: std::sync::Arc::from(instance_path.as_path()),
            accept_pause: AcceptPause::default(),
            reserve_fd: ReserveFd::new(),
            watchdog: None,
            spawn_retries: BTreeMap::new(),
            observer,
        };
        match crate::watchdog::Watchdog::start() {
            Ok(watchdog) => server.watchdog = Some(watchdog),
            Err(e) => server.log.line(&format!(
                "Warning: cannot start the watchdog ({e}): if ferry is killed, what app \
                 processes forked may outlive it"
            )),
        }
        server.banner(&args);
        server.observed(|o| o.announce_ready());
        Ok(server)
    }

    fn banner(&self, args: &StartArgs) {
        // An IPv6 address needs brackets in a URL.
        let shown_host = match args.address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => args.address.clone(),
        };
        let log_target = args
            .log_file
            .as_ref()
            .map_or("the terminal".to_string(), |p| p.display().to_string());
        println!(
            "=============== ferry {} web server started ===============",
            env!("CARGO_PKG_VERSION")
        );
        let pid_file = args
            .pid_file
            .as_ref()
            .map_or("none".to_string(), |p| p.display().to_string());
        println!(
            "PID file: {pid_file} (instance {}, pid {})",
            self.info.instance, self.info.pid
        );
        println!("Log file: {log_target}");
        if let Some(target) = &args.access_log {
            println!("Access log: {}", target.display());
        }
        if let Some(addr) = self.observer.metrics_address() {
            println!("Metrics and health: http://{addr}/metrics, /health, /ready");
        }
        println!("Environment: {}", self.app.environment);
        println!(
            "App: {} ({})",
            self.app.root.display(),
            self.app.type_name()
        );
        for listener in &self.listeners {
            let scheme = if listener.tls.is_some() {
                "https"
            } else {
                "http"
            };
            println!("Accessible via: {scheme}://{shown_host}:{}/", listener.port);
        }
        println!();
        println!("You can stop ferry by pressing Ctrl-C.");
        println!("===============================================================================");
    }

    /// The event loop. Returns the exit code once shutdown has completed.
    fn run(&mut self) -> ExitCode {
        let mut events = Events::with_capacity(1024);
        self.run_commands();
        let mut flush_deadline = None;
        loop {
            if self.shutdown_complete {
                // The last responses may still sit in slow clients' buffers: give them a
                // bounded moment to go out before the process exits.
                let deadline = *flush_deadline
                    .get_or_insert_with(|| std::time::Instant::now() + FINAL_FLUSH_TIME);
                if !self.clients_have_output() || std::time::Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = match flush_deadline {
                Some(deadline) => {
                    Some(deadline.saturating_duration_since(std::time::Instant::now()))
                }
                None => self.next_timeout(),
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.log.line(&format!("poll failed: {e}"));
                    return ExitCode::from(1);
                }
            }
            for event in events.iter() {
                match event.token() {
                    token if crate::listeners::TOKENS.contains(&token) => self.accept_clients(),
                    ADMIN => self.accept_admin(),
                    SIGNALS => self.on_signal(),
                    t if crate::observer::Observer::owns(t) => {
                        let (engine, registry) = (&self.engine, self.poll.registry());
                        self.observer.event(t, registry, || engine.status());
                    }
                    Token(t) => self.on_entry_event(t - FIRST_ENTRY, event),
                }
                self.run_commands();
            }
            self.on_timers();
            self.run_commands();
            self.flush_pending();
            self.observed(|o| o.end_of_round());
            // Taken back as soon as a descriptor is free again.
            self.reserve_fd.restore();
        }
        println!("Stopping web server... done!");
        ExitCode::SUCCESS
    }

    /// Writes every output of this round; writing can cause more (a response completing
    /// frees a process for a queued request), so until there is none.
    fn flush_pending(&mut self) {
        while !self.pending_flushes.is_empty() {
            let flushes = std::mem::take(&mut self.pending_flushes);
            for flush in flushes {
                match flush {
                    Flush::Client(key) => self.flush_client_now(key),
                    Flush::Backend(key) => self.flush_backend_now(key),
                }
            }
            self.run_commands();
        }
    }

    fn clients_have_output(&self) -> bool {
        self.entries.iter().any(|(_, entry)| match entry {
            Entry::Client(client) => !client.out.is_empty() || client.stream.output_pending(),
            _ => false,
        })
    }

    fn next_timeout(&self) -> Option<Duration> {
        let now = std::time::Instant::now();
        let engine = self.engine.poll_timeout().map(|at| self.clock.until(at));
        let probe = self
            .children
            .values()
            .filter_map(|c| c.probe)
            .map(|(at, _)| at.saturating_duration_since(now))
            .min();
        let deadline = self
            .deadlines
            .first()
            .map(|(at, _)| at.saturating_duration_since(now));
        let watcher = Some(self.watcher.next_check().saturating_duration_since(now));
        let accept_retry = [self.accept_pause.retry_at(), self.next_spawn_retry()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now));
        // A timer is due "at" an instant: never wake before it, or the loop spins.
        [engine, probe, deadline, watcher, accept_retry]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d + Duration::from_micros(50))
    }

    fn on_timers(&mut self) {
        let now = std::time::Instant::now();
        if self
            .engine
            .poll_timeout()
            .is_some_and(|at| at <= self.clock.now())
        {
            self.inputs.push_back(Input::Tick);
        }
        let due: Vec<ProcessId> = self
            .children
            .iter()
            .filter(|(_, c)| c.probe.is_some_and(|(at, _)| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.probe(id);
        }
        let due = now >= self.watcher.next_check();
        if let Some(reason) = self.watcher.check(now) {
            if !self.stopping {
                self.log
                    .line(&format!("Restarting the app processes: {reason}"));
                self.inputs
                    .push_back(Input::RestartGroup { group: self.group });
            }
        }
        self.retry_spawns(now);
        if self.accept_pause.due(now) {
            // No event announces that descriptors are free again: look.
            self.accept_clients();
            self.accept_admin();
        }
        if let Some(on) = due.then(|| self.watcher.always_restart_changed()).flatten() {
            let what = if on {
                "on: each request gets a newly started process"
            } else {
                "off"
            };
            self.log.line(&format!("always_restart.txt: {what}"));
            self.inputs.push_back(Input::SetAlwaysRestart {
                group: self.group,
                on,
            });
        }
        while let Some(&(at, key)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, key));
            self.client_deadline_passed(key, at);
        }
    }

    fn on_signal(&mut self) {
        let mut signals: Vec<i32> = self.signals.pending().collect();
        let before = signals.len();
        signals.retain(|&s| s != signal_hook::consts::SIGUSR1);
        if signals.len() < before {
            if let Some(line) = self.observer.reopen_access_log() {
                self.log.line(&line);
            }
        }
        if signals.is_empty() {
            return;
        }
        if self.stopping {
            // A second Ctrl-C: do not wait for in-flight requests any longer.
            self.log
                .line("Second stop signal: killing app processes now");
            for child in self.children.values() {
                child.process.signal(true);
            }
            return;
        }
        self.begin_stop();
    }

    /// Stops taking new connections and lets the engine wind the pool down.
    pub fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.observed(|o| o.stop_began());
        println!("Stopping web server...");
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener.socket);
        }
        self.inputs.push_back(Input::Shutdown);
        self.close_after_responses();
        self.close_idle_clients();
    }

    fn accept_clients(&mut self) {
        if self.listeners.is_empty() {
            self.accept_pause.resume(); // stopping: nothing to retry
            return;
        }
        let mut index = 0;
        // Each listener until its backlog is empty (edge-triggered: no event repeats it).
        while let Some(listener) = self.listeners.get(index) {
            match listener.socket.accept() {
                // The pause ends once the backlogs are empty: accepting one connection may
                // just take the one descriptor that was free.
                Ok((stream, peer)) => {
                    let tls = listener.tls.clone();
                    self.add_client(stream, peer, tls);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => index += 1,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A client that gave up while it waited in the backlog.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) if is_exhaustion(&e) => return self.pause_accepting(&e),
                Err(e) => {
                    self.log.line(&format!("accept failed: {e}"));
                    index += 1;
                }
            }
        }
        self.accepting_again();
    }

    /// Out of descriptors or memory: new connections wait in the listen backlog, and a timer
    /// tries again (with edge-triggered readiness no event would come for them).
    pub fn pause_accepting(&mut self, error: &std::io::Error) {
        if self.accept_pause.pause(std::time::Instant::now()) {
            self.log.line(&format!(
                "{}: accepting paused, new connections wait in the listen backlog",
                crate::resources::describe_exhaustion(error)
            ));
        }
    }

    fn accepting_again(&mut self) {
        if self.accept_pause.resume() {
            self.log.line("Accepting connections again");
        }
    }

    fn on_entry_event(&mut self, key: usize, event: &mio::event::Event) {
        match self.entries.get(key) {
            Some(Entry::Client(_)) => self.client_event(key, event),
            Some(Entry::Backend(_)) => self.backend_event(key, event),
            Some(Entry::ProcessExit(id)) => {
                let id = *id;
                self.process_exit_event(id)
            }
            Some(Entry::ProcessOutput(id, stream)) => {
                let (id, stream) = (*id, *stream);
                self.process_output(id, stream);
            }
            Some(Entry::Admin(_)) => self.admin_event(key),
            None => {}
        }
    }

    /// Feeds queued inputs to the engine and carries out every command, until both are empty.
    pub fn run_commands(&mut self) {
        loop {
            while let Some(command) = self.engine.poll_command() {
                self.execute(command);
            }
            match self.inputs.pop_front() {
                Some(input) => self.engine.handle(self.clock.now(), input),
                None => return,
            }
        }
    }

    fn execute(&mut self, command: Command) {
        let pid = |process: &ProcessId| self.children.get(process).map(|c| c.process.pid);
        let pid = match &command {
            Command::Kill { process, .. } | Command::Fail { process, .. } => pid(process),
            _ => None,
        };
        if let Some((level, line)) = crate::decisions::log_line(&command, pid) {
            self.log.at(level, &line);
        }
        match command {
            Command::Spawn {
                process, reason, ..
            } => {
                self.observer.spawned(reason);
                self.spawn(process)
            }
            Command::Forward { request, process } => self.forward(request, process),
            Command::Reject { request, reason } => self.reject(request, reason),
            Command::Fail {
                request, reason, ..
            } => {
                self.observer.failed(&reason);
                self.fail_request(request)
            }
            Command::TimeOut { request, .. } => self.time_out_request(request),
            Command::Kill {
                process,
                mode,
                reason,
            } => {
                self.observer.kill_sent(process, reason);
                if let Some(child) = self.children.get(&process) {
                    child.process.signal(mode == ferry_engine::KillMode::Force);
                } else {
                    self.observer.process_gone(process);
                    self.give_up_spawn(process);
                }
            }
            Command::RestartReport { outcome, .. } => self
                .log
                .line(&crate::status_report::restart_outcome_line(&outcome)),
            Command::ShutdownComplete => self.shutdown_complete = true,
        }
    }

    pub fn spawn(&mut self, id: ProcessId) {
        let spawned = children::spawn(&self.app, &self.process_dir, &self.loader_path, id.0);
        let mut process = match spawned {
            Ok(process) => process,
            Err(e) if is_exhaustion(&e) => return self.spawn_later(id, &e),
            Err(e) => {
                let error = format!("cannot start the app: {e}");
                self.log.line(&error);
                self.inputs
                    .push_back(Input::SpawnFailed { process: id, error });
                return;
            }
        };
        self.log.line(&format!(
            "Spawning app process {} ({})",
            process.pid,
            self.app.type_name()
        ));
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.track(process.pid);
        }
        let exit_key = self.entries.insert(Entry::ProcessExit(id));
        let registry = self.poll.registry();
        let _ = registry.register(
            &mut SourceFd(&process.pidfd_raw()),
            token_of(exit_key),
            Interest::READABLE,
        );
        let mut output_keys = Vec::new();
        for (pipe, stream) in [
            (&mut process.stdout, OutputStream::Stdout),
            (&mut process.stderr, OutputStream::Stderr),
        ] {
            if let Some(pipe) = pipe {
                use std::os::fd::AsRawFd;
                let key = self.entries.insert(Entry::ProcessOutput(id, stream));
                let _ = registry.register(
                    &mut SourceFd(&pipe.fd.as_raw_fd()),
                    token_of(key),
                    Interest::READABLE,
                );
                output_keys.push(key);
            }
        }
        let probe = Some((
            std::time::Instant::now() + Duration::from_millis(2),
            Duration::from_millis(5),
        ));
        self.children.insert(
            id,
            Child {
                process,
                exit_key,
                output_keys,
                probe,
                idle_backends: Vec::new(),
                startup_output: VecDeque::new(),
            },
        );
    }

    /// A spawning process is ready once it accepts a connection.
    fn probe(&mut self, id: ProcessId) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let accepted = match &child.process.addr {
            BackendAddr::Tcp(addr) => std::net::TcpStream::connect(addr).is_ok(),
            BackendAddr::Unix(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        };
        if accepted {
            child.probe = None;
            self.log
                .line(&format!("App process {} is ready", child.process.pid));
            self.inputs.push_back(Input::ProcessReady { process: id });
            self.observed(|o| o.process_ready());
        } else if let Some((_, pause)) = child.probe {
            // Probing often costs one loopback connect; probing late delays the pool's
            // growth by up to the pause.
            child.probe = Some((
                std::time::Instant::now() + pause,
                (pause * 2).min(Duration::from_millis(10)),
            ));
        }
    }

    fn process_output(&mut self, id: ProcessId, stream: OutputStream) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let pid = child.process.pid;
        let pipe = match stream {
            OutputStream::Stdout => child.process.stdout.as_mut(),
            OutputStream::Stderr => child.process.stderr.as_mut(),
        };
        let Some(pipe) = pipe else {
            return;
        };
        let mut lines = Vec::new();
        let open = pipe.drain(|line| lines.push(line.to_string()));
        if !open {
            use std::os::fd::AsRawFd;
            let fd = pipe.fd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        if child.probe.is_some() {
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                if child.startup_output.len() == STARTUP_OUTPUT_LINES {
                    child.startup_output.pop_front();
                }
                child
                    .startup_output
                    .push_back(line.chars().take(300).collect());
            }
        }
        for line in lines {
            self.log.app_output(&format!("App {pid} output: {line}"));
        }
    }

    /// Sees to an exit the pidfd has not reported yet; true if the process is gone.
    pub fn reap_if_exited(&mut self, id: ProcessId) -> bool {
        self.process_exit_event(id);
        !self.children.contains_key(&id)
    }

    fn process_exit_event(&mut self, id: ProcessId) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let Some(description) = child.process.reap() else {
            return;
        };
        // Whatever it printed last belongs before the news of its exit.
        self.process_output(id, OutputStream::Stdout);
        self.process_output(id, OutputStream::Stderr);
        let child = self.children.remove(&id).expect("child is known");
        self.observer.process_gone(id);
        let pid = child.process.pid;
        // `reap` killed what was left of its group.
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.untrack(pid);
        }
        self.log
            .line(&format!("App process {pid} exited ({description})"));
        let description = if child.probe.is_some() && !child.startup_output.is_empty() {
            let output: Vec<&str> = child.startup_output.iter().map(String::as_str).collect();
            format!("{description}; its last output: {}", output.join(" | "))
        } else {
            description
        };
        let registry = self.poll.registry();
        let _ = registry.deregister(&mut SourceFd(&child.process.pidfd_raw()));
        self.entries.remove(child.exit_key);
        for key in child.output_keys {
            self.entries.remove(key);
        }
        for key in child.idle_backends {
            self.close_backend(key);
        }
        if let BackendAddr::Unix(path) = &child.process.addr {
            let _ = std::fs::remove_file(path);
        }
        // Responses it completed before it exited are in the sockets: they are delivered,
        // and requests it never read are handed back, before the engine fails what is left.
        self.drain_backends_of(id);
        self.inputs.push_back(Input::ProcessExited {
            process: id,
            description,
        });
    }

    /// Tells the observer something; what went wrong with it goes to the log.
    pub fn observed(
        &mut self,
        tell: impl FnOnce(&mut crate::observer::Observer) -> Option<String>,
    ) {
        if let Some(error) = tell(&mut self.observer) {
            self.log.warn(&error);
        }
    }

    /// A new engine request id for a complete request from client `key`.
    pub fn submit_request(&mut self, key: usize) -> RequestId {
        let request = RequestId(self.next_request_id);
        self.next_request_id += 1;
        self.requests.insert(request, key);
        self.inputs.push_back(Input::RequestArrived {
            group: self.group,
            request,
        });
        request
    }
}
