//! `ferry start`: the mio event loop that feeds real events to the engine and carries out its
//! commands. Nothing here decides anything about the pool.
//!
//! [`Server`] owns every piece of state and is the only thing that changes it. Its parts:
//!
//! - [`setup`]: from `ferry start`'s arguments to a running server (engine configuration,
//!   listeners, instance directory, banner).
//! - [`event_loop`]: the loop itself: polling, dispatching each event by its token, timers,
//!   signals, accepting connections, and the end-of-round flush.
//! - [`engine_commands`]: feeding inputs to the engine and carrying out its commands.
//! - [`processes`]: app processes: spawning (and retrying spawns ferry had no resources
//!   for), readiness probes, their output, reaping.
//! - [`apply`]: the connections' side. A connection (`client`, `backend`, `admin`, `tunnel`)
//!   never sees the server: the server hands it a [`Context`](crate::actions::Context) and
//!   an empty [`Actions`](crate::actions::Actions) list, the connection acts on its own
//!   socket and buffers and pushes what it wants done beyond itself, and
//!   [`Server::apply`] carries that out. [`proxy`] holds what takes the server's knowledge
//!   of processes and requests: choosing and opening app connections, settling a broken
//!   one's request, tunnels' ends. [`admin_commands`] answers the admin socket.
//!
//! Adding a kind of connection: a type in its own module with methods that take
//! `(&mut self, &mut Context, &mut Actions)`, a variant of [`Entry`] for its token, a line in
//! `Server::on_entry_event`, and an [`Action`](crate::actions::Action) variant for each new
//! thing it needs done (applied in `apply.rs`). A server-wide feature (an access log, a
//! metrics listener) is state on `Server`, set up in `setup.rs`; if connections produce its
//! events, they push an action for it, and a listener of its own gets a fixed token (as
//! `listeners::TOKENS` and the metrics listener's have) and an arm in the event loop's
//! dispatch.

mod admin_commands;
mod apply;
mod engine_commands;
mod event_loop;
mod processes;
mod proxy;
mod setup;

pub use setup::start;

use crate::actions::{Conn, Context};
use crate::admin::AdminConn;
use crate::app::App;
use crate::backend::Backend;
use crate::children::AppProcess;
use crate::client::Client;
use crate::clock::Clock;
use crate::instance::{InstanceDir, InstanceInfo};
use crate::listeners::Listener;
use crate::log::Log;
use crate::resources::{AcceptPause, ReserveFd};
use ferry_engine::{Engine, GroupId, Input, ProcessId, RequestId};
use mio::net::UnixListener;
use mio::{Poll, Token};
use slab::Slab;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

// The listeners' tokens are `listeners::TOKENS` (0 and 4), the metrics listener's 3 and
// up (`observer`).
/// The token of the admin socket's listener.
const ADMIN: Token = Token(1);
/// The token of the signal pipe.
const SIGNALS: Token = Token(2);

/// Tokens from here on index `Server::entries`.
const FIRST_ENTRY: usize = 16;

fn token_of(key: usize) -> Token {
    Token(key + FIRST_ENTRY)
}

/// What a token stands for.
enum Entry {
    Client(Box<Client>),
    Backend(Box<Backend>),
    /// The pidfd of an app process: readable once it exits.
    ProcessExit(ProcessId),
    ProcessOutput(ProcessId, OutputStream),
    Admin(AdminConn),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutputStream {
    Stdout,
    Stderr,
}

/// An app process the engine knows, with the OS resources that go with it.
struct Child {
    process: AppProcess,
    exit_key: usize,
    output_keys: Vec<usize>,
    /// While spawning: when to next try connecting, and the pause after that.
    probe: Option<(Instant, Duration)>,
    /// Open keep-alive connections to it, not in use.
    idle_backends: Vec<usize>,
    /// The last lines it printed while starting: why it failed to start, for the error page.
    startup_output: VecDeque<String>,
}

pub struct Server {
    poll: Poll,
    engine: Engine,
    clock: Clock,
    /// `--port`, and `--ssl-port` if given; empty once stopping.
    listeners: Vec<Listener>,
    admin: UnixListener,
    signals: signal_hook_mio::v1_0::Signals,
    entries: Slab<Entry>,
    children: BTreeMap<ProcessId, Child>,
    /// The client connection of each request the engine knows.
    requests: HashMap<RequestId, usize>,
    /// Inputs for the engine, fed to it by `run_commands`.
    inputs: VecDeque<Input>,
    app: App,
    group: GroupId,
    instance: InstanceDir,
    info: InstanceInfo,
    loader_path: PathBuf,
    /// Where app processes make their sockets (see `app_user::process_dir`).
    process_dir: PathBuf,
    log: Log,
    /// What connections read of the server (settings, whether stopping, …).
    context: Context,
    shutdown_complete: bool,
    /// Output written during this round of events, sent at its end (see
    /// [`Action::Flush`](crate::actions::Action::Flush)).
    pending_flushes: Vec<Conn>,
    /// Looks for `tmp/restart.txt` and, with `--reload`, the app's Python files.
    watcher: crate::reload::Watcher,
    /// Measures the app processes for `--memory-limit`.
    memory_watch: crate::memory_watch::MemoryWatch,
    /// Client connections with a deadline, by deadline.
    deadlines: BTreeSet<(Instant, usize)>,
    /// Accepting paused: ferry ran out of descriptors or memory.
    accept_pause: AcceptPause,
    /// A descriptor kept free for the admin socket, so `ferry status` answers at the limit.
    reserve_fd: ReserveFd,
    /// Stops what app processes leave behind if ferry dies (see `watchdog`).
    watchdog: Option<crate::watchdog::Watchdog>,
    /// Spawns that found ferry out of descriptors or memory, and when to try each again.
    spawn_retries: BTreeMap<ProcessId, Instant>,
    /// The access log, the metrics listener, systemd's notifications.
    observer: crate::observer::Observer,
    /// How many per-request decisions reach the log in an overload.
    decision_limiter: crate::decision_limiter::DecisionLimiter,
}
