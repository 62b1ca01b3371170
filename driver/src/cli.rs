//! The command line: `ferry start`, `ferry status`, `ferry stop`, `ferry sim`.

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
    Start(StartArgs),
    /// Show the process pool of a running instance.
    Status(StatusArgs),
    /// Stop a running instance as Ctrl-C would.
    Stop(SelectArgs),
    /// Replace every app process of a running instance, one by one, without downtime.
    Restart(SelectArgs),
    /// Run a scenario of traffic, crashes and idle time on a virtual clock.
    Sim(SimArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// The app's directory.
    #[arg(default_value = ".")]
    pub app_dir: PathBuf,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: String,
    /// Most app processes alive at once, draining and starting ones included.
    #[arg(long, default_value_t = 6)]
    pub max_pool_size: usize,
    /// App processes kept alive even when idle.
    #[arg(long, default_value_t = 1)]
    pub min_instances: usize,
    /// Seconds an idle process above --min-instances stays alive (0: forever).
    #[arg(long, default_value_t = 300)]
    pub pool_idle_time: u64,
    /// Replace a process after it has handled this many requests (0: never).
    #[arg(long, default_value_t = 0)]
    pub max_requests: u64,
    /// Requests waiting for a free process beyond this get 503 (0: unlimited).
    #[arg(long, default_value_t = 100)]
    pub max_request_queue_size: usize,
    /// Requests one process handles at once (0: unlimited).
    #[arg(
        long,
        visible_alias = "force-max-concurrent-requests-per-process",
        default_value_t = 1
    )]
    pub concurrency: u32,
    /// Processes started at once while the pool grows.
    #[arg(long, default_value_t = 6)]
    pub max_spawn_concurrency: usize,
    /// Seconds an app process may take to start listening.
    #[arg(long, default_value_t = 90)]
    pub start_timeout: u64,
    /// development or production: production hides spawn errors from clients.
    #[arg(long, short = 'e', default_value = "development")]
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
    /// Python interpreter for WSGI apps.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Write ferry's log here instead of to the terminal.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_body_size: u64,
    /// Seconds a client has to send a whole request head, from its first byte (then 408).
    #[arg(long, default_value_t = 30)]
    pub header_timeout: u64,
    /// Seconds a request body may stall before the connection is closed.
    #[arg(long, default_value_t = 60)]
    pub body_timeout: u64,
    /// Seconds an idle keep-alive client connection stays open.
    #[arg(long, default_value_t = 60)]
    pub keep_alive_timeout: u64,
    /// Seconds a client may take to accept more of its response before it is dropped.
    #[arg(long, default_value_t = 60)]
    pub send_timeout: u64,
    /// Seconds in-flight requests may run after a stop before app processes are killed.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
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
}
