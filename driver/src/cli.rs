//! The command line: `ferry start`, `ferry status`, `ferry stop`, `ferry sim`.

use crate::cli_values as values;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "An application server that runs your web app as a managed pool of processes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where running instances register themselves (default: $FERRY_INSTANCE_REGISTRY_DIR,
    /// else the system's temporary directory).
    #[arg(long, global = true)]
    pub instance_registry_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start serving the app in APP_DIR (default: the current directory).
    Start(Box<StartArgs>),
    /// Show the process pool of a running instance.
    Status(StatusArgs),
    /// Stop a running instance as Ctrl-C would.
    Stop(SelectArgs),
    /// Replace every app process of a running instance, one by one, without downtime; waits
    /// for the outcome and fails if the new code cannot start.
    Restart(RestartArgs),
    /// Run a scenario of traffic, crashes and idle time on a virtual clock.
    Sim(Box<SimArgs>),
    /// Replay an access log over a sweep of pool settings and recommend the cheapest one that
    /// meets a latency target.
    Plan(Box<crate::cli_replay::PlanArgs>),
}

/// `ferry start`'s flags. Each may also come from `PASSENGER_<NAME>` or `FERRY_<NAME>` in the
/// environment, or from `Passengerfile.json` in the app directory (see [`crate::settings`]):
/// the command line wins, then the environment, then the file, then the default shown here.
#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct StartArgs {
    /// The app's directory.
    #[arg(default_value = ".")]
    pub app_dir: PathBuf,
    /// TCP port to listen on.
    #[arg(long, short = 'p', default_value_t = 3000, value_parser = values::port)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, short = 'a', default_value = "0.0.0.0")]
    pub address: String,
    /// Most app processes alive at once, draining and starting ones included.
    #[arg(long, default_value_t = 6, value_parser = values::at_least_one::<usize>)]
    pub max_pool_size: usize,
    /// App processes kept alive even when idle.
    #[arg(long, default_value_t = 1, value_parser = values::count::<usize>)]
    pub min_instances: usize,
    /// Seconds an idle process above --min-instances stays alive (0: forever).
    #[arg(long, default_value_t = 300, value_parser = values::count::<u64>)]
    pub pool_idle_time: u64,
    /// Replace a process after it has handled this many requests (0: never).
    #[arg(long, default_value_t = 0, value_parser = values::count::<u64>)]
    pub max_requests: u64,
    /// Requests waiting for a free process beyond this get 503 (0: unlimited).
    #[arg(long, default_value_t = 100, value_parser = values::count::<usize>)]
    pub max_request_queue_size: usize,
    /// Requests one process handles at once (0: unlimited). Default: 1 for a WSGI app (its
    /// loader serves one request at a time; --thread-count in the thread model), 0 for a
    /// generic app (--app-start-command: an event loop or a threaded server takes many at once).
    #[arg(
        long,
        visible_alias = "force-max-concurrent-requests-per-process",
        value_parser = values::count::<u32>
    )]
    pub concurrency: Option<u32>,
    /// How a WSGI process serves several requests at once: `process` (one at a time) or
    /// `thread` (a thread per request, up to --thread-count; the app must be thread-safe).
    #[arg(long, value_enum, default_value_t = ConcurrencyModel::Process)]
    pub concurrency_model: ConcurrencyModel,
    /// With --concurrency-model thread: requests (threads) per WSGI process at once.
    /// Default: 4.
    #[arg(long, value_parser = values::at_least_one::<u32>)]
    pub thread_count: Option<u32>,
    /// Sessions per process the pool is scaled for: a soft target, below the hard
    /// --concurrency cap; the pool grows once its processes carry more than 90% of it on
    /// average. Default: --concurrency, or 10 when that is 0 (unlimited).
    #[arg(long, value_parser = values::at_least_one::<u32>)]
    pub target_concurrency: Option<u32>,
    /// Processes started at once while the pool grows.
    #[arg(long, default_value_t = 6, value_parser = values::at_least_one::<usize>)]
    pub max_spawn_concurrency: usize,
    /// Seconds an app process may take to start listening.
    #[arg(long, default_value_t = 90, value_parser = values::at_least_one::<u64>)]
    pub start_timeout: u64,
    /// Seconds a request may run in the app; longer gets 504 and its process is killed
    /// (SIGTERM, then SIGKILL) and replaced (0: no limit).
    #[arg(long, default_value_t = 0, value_parser = values::count::<u64>)]
    pub max_request_time: u64,
    /// Seconds a request may wait in the queue for a process; longer gets 503 (0: no limit).
    #[arg(long, default_value_t = 0, value_parser = values::count::<u64>)]
    pub max_request_queue_time: u64,
    /// Megabytes of memory an app process may use (as `ferry status` shows it, checked every
    /// second); one above it is replaced after its current requests, its replacement started
    /// and ready first (0: no limit).
    #[arg(long, default_value_t = 0, value_parser = values::count::<u64>)]
    pub memory_limit: u64,
    /// Any name; set as RAILS_ENV, RACK_ENV, WSGI_ENV, NODE_ENV and PASSENGER_APP_ENV for the
    /// app. Only development shows error details (friendly error pages) to clients.
    #[arg(long, short = 'e', default_value = "development", value_parser = values::environment)]
    pub environment: String,
    /// Command that starts one app process listening on $PORT (a generic app).
    #[arg(long)]
    pub app_start_command: Option<String>,
    /// The kind of app; detected from APP_DIR when not given.
    #[arg(long, value_enum)]
    pub app_type: Option<AppType>,
    /// The WSGI startup file (default: passenger_wsgi.py).
    #[arg(long)]
    pub startup_file: Option<PathBuf>,
    /// Python interpreter for WSGI apps: a name looked up on PATH, or a path (a relative one
    /// is taken from the current directory).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Write ferry's log here instead of to the terminal (daemonized: APP_DIR/ferry.PORT.log).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Write an access log here: a line per request, in the combined format followed by the
    /// request time in seconds and the app process's pid (- for standard output). SIGUSR1
    /// reopens it, for log rotation.
    #[arg(long, value_name = "PATH")]
    pub access_log: Option<PathBuf>,
    /// The access log's format: combined, or json (one object a line).
    #[arg(long, value_enum, default_value_t = crate::access_log::AccessLogFormat::Combined)]
    pub access_log_format: crate::access_log::AccessLogFormat,
    /// Serve GET /metrics (Prometheus), /health and /ready on this IP address and port, e.g.
    /// 127.0.0.1:9100 (default: off).
    #[arg(long, value_name = "IP:PORT")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Which of ferry's own log lines to write.
    #[arg(long, value_enum, default_value_t = LogLevel::Notice)]
    pub log_level: LogLevel,
    /// Run in the background once started (log to --log-file, pid in --pid-file).
    #[arg(long, short = 'd')]
    pub daemonize: bool,
    /// Write ferry's pid here while it runs (daemonized: APP_DIR/ferry.PORT.pid).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// An environment variable for the app, NAME=VALUE; repeat for more.
    #[arg(long = "envvar", value_name = "NAME=VALUE", value_parser = values::envvar)]
    pub envvars: Vec<(String, String)>,
    /// Run app processes as this user (a name or a uid); only when ferry runs as root.
    #[arg(long)]
    pub user: Option<String>,
    /// Show error details (why the app cannot start) to clients (default: in development).
    #[arg(long, overrides_with = "no_friendly_error_pages")]
    pub friendly_error_pages: bool,
    /// Never show error details to clients.
    #[arg(long, overrides_with = "friendly_error_pages")]
    pub no_friendly_error_pages: bool,
    /// Where restart.txt and always_restart.txt are watched (default: APP_DIR/tmp).
    #[arg(long)]
    pub restart_dir: Option<PathBuf>,
    /// Files under this directory are served by ferry itself (default: APP_DIR/public).
    #[arg(long)]
    pub static_files_dir: Option<PathBuf>,
    /// Development: restart the app processes when a Python file under APP_DIR changes.
    #[arg(long)]
    pub reload: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 30, value_parser = values::count::<u64>)]
    pub max_body_size: u64,
    /// Seconds a client has to send a whole request head, from its first byte (then 408).
    #[arg(long, default_value_t = 30, value_parser = values::at_least_one::<u64>)]
    pub header_timeout: u64,
    /// Seconds a request body may stall before the connection is closed.
    #[arg(long, default_value_t = 60, value_parser = values::at_least_one::<u64>)]
    pub body_timeout: u64,
    /// Seconds an idle keep-alive client connection stays open.
    #[arg(long, default_value_t = 60, value_parser = values::at_least_one::<u64>)]
    pub keep_alive_timeout: u64,
    /// Seconds a client may take to accept more of its response before it is dropped.
    #[arg(long, default_value_t = 60, value_parser = values::at_least_one::<u64>)]
    pub send_timeout: u64,
    /// Seconds in-flight requests may run after a stop before app processes are killed.
    #[arg(long, default_value_t = 30, value_parser = values::count::<u64>)]
    pub shutdown_timeout: u64,
    /// Serve HTTPS: on --port, or with --ssl-port on that port as well as plain HTTP on
    /// --port. Needs --ssl-certificate and --ssl-certificate-key.
    #[arg(long)]
    pub ssl: bool,
    /// With --ssl: the certificate chain, PEM (the server's certificate first).
    #[arg(long, value_name = "PATH")]
    pub ssl_certificate: Option<PathBuf>,
    /// With --ssl: the certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH")]
    pub ssl_certificate_key: Option<PathBuf>,
    /// With --ssl: serve HTTPS on this port, and plain HTTP on --port as well.
    #[arg(long, value_parser = values::port)]
    pub ssl_port: Option<u16>,
    /// Peers whose X-Forwarded-For, -Proto, -Host and Forwarded fields are kept (and
    /// extended): comma-separated IP addresses and CIDR networks, or * for every peer.
    /// From any other peer those fields are dropped.
    #[arg(
        long,
        value_name = "IPS",
        default_value = crate::trusted_proxies::DEFAULT,
        value_parser = crate::trusted_proxies::parse
    )]
    pub forwarded_allow_ips: crate::trusted_proxies::TrustedProxies,
    /// Connections the listening socket holds while ferry is busy (its listen backlog;
    /// the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = 2048, value_parser = values::at_least_one::<u32>)]
    pub socket_backlog: u32,
}

impl StartArgs {
    /// Whether clients see error details: --friendly-error-pages or
    /// --no-friendly-error-pages, else only in development, as Passenger does.
    pub fn friendly_error_pages(&self) -> bool {
        if self.friendly_error_pages {
            return true;
        }
        !self.no_friendly_error_pages && self.environment == "development"
    }
}

/// ferry's log levels, with Passenger's numbers (`--log-level 3` is notice) as aliases.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    #[value(alias = "0", alias = "1", alias = "crit")]
    Error,
    #[value(alias = "2", alias = "warning")]
    Warn,
    #[value(alias = "3")]
    Notice,
    #[value(alias = "4")]
    Info,
    #[value(alias = "5", alias = "6", alias = "7")]
    Debug,
}

/// Passenger's `--concurrency-model`, for ferry's WSGI loader.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrencyModel {
    #[default]
    Process,
    Thread,
}

impl ConcurrencyModel {
    /// The loader's FERRY_CONCURRENCY_MODEL.
    pub fn name(self) -> &'static str {
        match self {
            ConcurrencyModel::Process => "process",
            ConcurrencyModel::Thread => "thread",
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Wsgi,
    Generic,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// The instance listening on this port, when several run.
    #[arg(long)]
    pub port: Option<u16>,
    /// The instance with this id (see `ferry status`), when several run.
    #[arg(long)]
    pub instance: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RestartArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Return once the restart is requested, without waiting for its outcome.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// The scenario file (TOML). Not needed with --swarm.
    pub scenario: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Draw a timeline of the run into this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Run this many random scenarios with the engine's invariants checked after every event.
    #[arg(long)]
    pub swarm: Option<u64>,
    /// Replay this access log instead of a scenario: ferry's own (--access-log, combined or
    /// JSON), or the combined log format followed by a request time (nginx $request_time in
    /// seconds, Apache %D in microseconds).
    #[arg(long, conflicts_with_all = ["scenario", "swarm"])]
    pub replay: Option<PathBuf>,
    /// With --replay: the pool, as `ferry start` takes it.
    #[command(flatten)]
    pub pool: crate::cli_replay::ReplayPoolArgs,
}
