//! From `ferry start`'s arguments to a running [`Server`]: the engine's configuration (and
//! its errors in the words of the flags), the listeners, the instance directory, the banner.

use super::{Server, ADMIN, SIGNALS};
use crate::actions::{Context, ProxySettings};
use crate::app::{App, AppKind};
use crate::cli::StartArgs;
use crate::clock::Clock;
use crate::exchange::RequestFormat;
use crate::instance::{InstanceDir, InstanceInfo};
use crate::listeners::{Listener, Planned};
use crate::log::Log;
use crate::resources::{AcceptPause, ReserveFd};
use ferry_engine::{Config, Engine, GroupConfig, GroupId, PoolConfig};
use mio::net::UnixListener;
use mio::{Interest, Poll};
use slab::Slab;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
            memory_limit_bytes: crate::memory_watch::limit_bytes(args.memory_limit),
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
    pub(super) fn new(
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
        // In the instance directory, not in --user's: the app's user cannot change it.
        let loader_dir = instance.path.join("wsgi-loader");
        let loader_path = match app.kind {
            AppKind::Wsgi { .. } => crate::wsgi_loader::write_into(&loader_dir).map_err(|e| {
                format!(
                    "cannot write the WSGI loader into {}: {e}",
                    loader_dir.display()
                )
            })?,
            AppKind::Generic { .. } => loader_dir,
        };
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
            request_format: match app.kind {
                AppKind::Wsgi { .. } => RequestFormat::WsgiFrame,
                AppKind::Generic { .. } => RequestFormat::Http,
            },
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
            inputs: VecDeque::new(),
            app,
            group: GroupId(0),
            instance,
            info,
            loader_path,
            process_dir,
            log,
            context: Context::new(
                settings,
                std::sync::Arc::from(instance_path.as_path()),
                static_dir,
            ),
            shutdown_complete: false,
            deadlines: Default::default(),
            watcher,
            memory_watch: crate::memory_watch::MemoryWatch::new(
                args.memory_limit,
                std::time::Instant::now(),
            ),
            pending_flushes: Vec::new(),
            accept_pause: AcceptPause::default(),
            reserve_fd: ReserveFd::new(),
            watchdog: None,
            spawn_retries: BTreeMap::new(),
            observer,
            decision_limiter: Default::default(),
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

    pub(super) fn banner(&self, args: &StartArgs) {
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
}
