//! A small driver for tests: it plays the OS and the clients around one engine, checks the
//! invariants after every input and hands back the commands each input produced.

use core::time::Duration;
use ferry_engine::{
    Command, Config, Engine, FailReason, GroupConfig, GroupId, Input, Instant, KillMode,
    KillReason, PoolConfig, PoolStatus, ProcessId, ProcessState, RejectReason, RequestId,
    SpawnReason,
};

pub fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

pub fn ms(milliseconds: u64) -> Duration {
    Duration::from_millis(milliseconds)
}

/// The instant `since_start` after the epoch the tests start at.
pub fn at(since_start: Duration) -> Instant {
    Instant::ZERO + since_start
}

/// A group of the given size settings, scaled for `concurrency` sessions per process (one
/// when unlimited); everything else default.
pub fn group(min_instances: usize, concurrency: u32) -> GroupConfig {
    GroupConfig {
        min_instances,
        concurrency,
        target_concurrency: concurrency.max(1),
        ..GroupConfig::default()
    }
}

pub fn pool_of(max_pool_size: usize) -> PoolConfig {
    PoolConfig {
        max_pool_size,
        ..PoolConfig::default()
    }
}

pub struct Pool {
    pub engine: Engine,
    pub now: Instant,
}

impl Pool {
    /// Builds the engine at instant zero; returns the commands it starts with.
    pub fn start(pool: PoolConfig, groups: Vec<GroupConfig>) -> (Pool, Vec<Command>) {
        let mut engine = Engine::new(Config { pool, groups }, Instant::ZERO).expect("valid config");
        let commands = drain(&mut engine);
        (
            Pool {
                engine,
                now: Instant::ZERO,
            },
            commands,
        )
    }

    /// Builds the engine and makes every process it spawns at start ready; returns them.
    pub fn started(pool: PoolConfig, groups: Vec<GroupConfig>) -> (Pool, Vec<ProcessId>) {
        let (mut p, commands) = Pool::start(pool, groups);
        let processes = spawns(&commands);
        for process in &processes {
            let more = p.ready(*process);
            assert!(spawns(&more).is_empty(), "readiness spawned more: {more:?}");
        }
        (p, processes)
    }

    /// Feeds one input at the current instant and drains its commands.
    pub fn input(&mut self, input: Input) -> Vec<Command> {
        self.engine.handle(self.now, input);
        if let Err(violation) = self.engine.check_invariants() {
            panic!("{violation}");
        }
        drain(&mut self.engine)
    }

    pub fn arrive(&mut self, group: u32, request: u64) -> Vec<Command> {
        self.input(Input::RequestArrived {
            group: GroupId(group),
            request: RequestId(request),
        })
    }

    pub fn finish(&mut self, request: u64) -> Vec<Command> {
        self.input(Input::RequestFinished {
            request: RequestId(request),
        })
    }

    pub fn client_gone(&mut self, request: u64) -> Vec<Command> {
        self.input(Input::ClientGone {
            request: RequestId(request),
        })
    }

    pub fn ready(&mut self, process: ProcessId) -> Vec<Command> {
        self.input(Input::ProcessReady { process })
    }

    pub fn exited(&mut self, process: ProcessId) -> Vec<Command> {
        self.input(Input::ProcessExited {
            process,
            description: "exit status 1".into(),
        })
    }

    pub fn spawn_failed(&mut self, process: ProcessId, error: &str) -> Vec<Command> {
        self.input(Input::SpawnFailed {
            process,
            error: error.into(),
        })
    }

    /// Moves the clock forward and ticks once, as a driver woken late would.
    pub fn advance(&mut self, by: Duration) -> Vec<Command> {
        self.now = self.now + by;
        self.input(Input::Tick)
    }

    /// Moves the clock to `instant` (not backwards) and feeds `input` there.
    pub fn at(&mut self, instant: Instant, input: Input) -> Vec<Command> {
        assert!(instant >= self.now, "tests do not turn the clock back");
        self.now = instant;
        self.input(input)
    }

    /// Sleeps like a driver until `until`: ticks at every `poll_timeout` on the way, and once
    /// at `until`. Returns each command with the instant it was given at.
    pub fn run_until(&mut self, until: Instant) -> Vec<(Instant, Command)> {
        let mut out = Vec::new();
        loop {
            let wake = match self.engine.poll_timeout() {
                Some(deadline) if deadline <= until => deadline.max(self.now),
                _ => until,
            };
            self.now = wake;
            out.extend(self.input(Input::Tick).into_iter().map(|c| (wake, c)));
            if wake == until {
                return out;
            }
        }
    }

    pub fn status(&self) -> PoolStatus {
        self.engine.status()
    }

    pub fn state(&self, process: ProcessId) -> Option<ProcessState> {
        self.status()
            .groups
            .iter()
            .flat_map(|g| &g.processes)
            .find(|p| p.id == process)
            .map(|p| p.state)
    }

    /// The group's live processes and their states, by id.
    pub fn states(&self, group: u32) -> Vec<(ProcessId, ProcessState)> {
        self.status().groups[group as usize]
            .processes
            .iter()
            .map(|p| (p.id, p.state))
            .collect()
    }

    pub fn count_in(&self, group: u32, state: ProcessState) -> usize {
        self.states(group)
            .iter()
            .filter(|(_, s)| *s == state)
            .count()
    }
}

pub fn drain(engine: &mut Engine) -> Vec<Command> {
    core::iter::from_fn(|| engine.poll_command()).collect()
}

pub fn spawns(commands: &[Command]) -> Vec<ProcessId> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Spawn { process, .. } => Some(*process),
            _ => None,
        })
        .collect()
}

pub fn spawns_in(commands: &[Command], group: u32) -> Vec<ProcessId> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Spawn {
                process, group: g, ..
            } if g.0 == group => Some(*process),
            _ => None,
        })
        .collect()
}

/// `(request, process)` of every forward.
pub fn forwards(commands: &[Command]) -> Vec<(u64, ProcessId)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Forward { request, process } => Some((request.0, *process)),
            _ => None,
        })
        .collect()
}

pub fn forward_of(commands: &[Command], request: u64) -> Option<ProcessId> {
    forwards(commands)
        .into_iter()
        .find(|(r, _)| *r == request)
        .map(|(_, p)| p)
}

pub fn kills(commands: &[Command]) -> Vec<(ProcessId, KillMode)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Kill { process, mode, .. } => Some((*process, *mode)),
            _ => None,
        })
        .collect()
}

pub fn rejects(commands: &[Command]) -> Vec<(u64, RejectReason)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Reject { request, reason } => Some((request.0, reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn fails(commands: &[Command]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Fail { request, .. } => Some(request.0),
            _ => None,
        })
        .collect()
}

/// Commands of a timed run (see [`Pool::run_until`]) without their instants.
pub fn untimed(timed: &[(Instant, Command)]) -> Vec<Command> {
    timed.iter().map(|(_, c)| c.clone()).collect()
}

/// `(process, reason)` of every spawn.
pub fn spawn_reasons(commands: &[Command]) -> Vec<(ProcessId, SpawnReason)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Spawn {
                process, reason, ..
            } => Some((*process, *reason)),
            _ => None,
        })
        .collect()
}

/// `(process, mode, reason)` of every kill.
pub fn kill_reasons(commands: &[Command]) -> Vec<(ProcessId, KillMode, KillReason)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Kill {
                process,
                mode,
                reason,
            } => Some((*process, *mode, *reason)),
            _ => None,
        })
        .collect()
}

/// `(request, reason)` of every 502.
pub fn fail_reasons(commands: &[Command]) -> Vec<(u64, FailReason)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Fail {
                request, reason, ..
            } => Some((request.0, reason.clone())),
            _ => None,
        })
        .collect()
}
