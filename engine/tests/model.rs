//! Property tests: long random input sequences against a reference model, with shrinking
//! (`proptest-state-machine`).
//!
//! The engine allocates process ids, so the random steps are abstract ("make the k-th spawning
//! process ready", "finish the k-th request in flight") and the model resolves them against
//! what the engine's commands have told it so far: which processes were spawned and killed,
//! which requests were forwarded, rejected, failed. That model plays the OS and the clients.
//!
//! After every step:
//! - `Engine::check_invariants` holds;
//! - every command makes sense to the model: a forward goes to a process the test made ready,
//!   not killed, of the request's group, with room; a request ends exactly once (forwarded and
//!   finished or cancelled, rejected, failed, or cancelled while queued); a process fails only
//!   requests it held, and only when it exits; live processes never exceed `max_pool_size`
//!   counting spawns and exits;
//! - every reason a command gives has grounds in what the model saw: a spawn for a restart
//!   follows a restart of its group, a kill for idleness hits an idle process, a 502 says
//!   "stopped" exactly when the process was killed, for the reason it was killed, …;
//! - the engine's counts agree with the model's.
//!
//! At the end of each case (liveness): faults stop, every spawn becomes ready, every kill is
//! obeyed, every request finishes, time runs past every timer. Then no request is open and
//! the pool has settled at `min_instances` per group (or is shut down, once). Finally the
//! whole input log is replayed on a fresh engine, which must give identical commands.

use core::time::Duration;
use ferry_engine::{
    Command, Config, Engine, FailReason, GroupConfig, GroupId, Input, Instant, KillMode,
    KillReason, PoolConfig, ProcessId, ProcessState, RejectReason, RequestId, RestartOutcome,
    SpawnReason,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use std::collections::{BTreeMap, BTreeSet};

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_engine_agrees_with_the_model_over_random_inputs(sequential 1..300 => PoolTest);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    })]

    /// Invariant 7: two engines fed the same random sequence, each through its own model (the
    /// inputs depend on the commands: which process to make ready, which request to finish),
    /// give the same inputs and the same commands, step by step.
    #[test]
    fn the_same_inputs_give_the_same_commands(
        (setup, steps, _) in PoolModel::sequential_strategy(1..300)
    ) {
        let run = || {
            let mut harness = Harness::new(setup.config.clone());
            for step in steps.clone() {
                harness.step(step);
            }
            harness.settle();
            (harness.log, harness.outputs)
        };
        let (inputs, commands) = run();
        let (inputs_again, commands_again) = run();
        prop_assert!(inputs == inputs_again);
        prop_assert!(commands == commands_again);
    }
}

// ---------------------------------------------------------------------------------------------
// The reference state: the configuration and the next request id. Everything else depends on
// the engine's own choices and lives with the system under test.

#[derive(Clone, Debug)]
struct Setup {
    config: Config,
    /// How often processes crash and spawns fail: 1 (rarely) to 8 (often).
    fault_weight: u32,
    next_request: u64,
}

#[derive(Clone, Debug)]
enum Step {
    Arrive {
        group: u32,
        request: u64,
    },
    Finish {
        pick: usize,
    },
    ClientGone {
        pick: usize,
    },
    /// The client leaves, and the driver keeps the connection to the app: an in-flight
    /// request keeps its session until it finishes.
    ClientAbandon {
        pick: usize,
    },
    Ready {
        pick: usize,
    },
    SpawnFail {
        pick: usize,
    },
    /// A live process exits on its own (a crash, or dying while spawning).
    Crash {
        pick: usize,
    },
    /// A killed process exits, as the OS makes it.
    Reap {
        pick: usize,
    },
    /// The process of an in-flight request refused its connection.
    Refuse {
        pick: usize,
    },
    /// The driver could not forward an in-flight request (out of file descriptors).
    ForwardFail {
        pick: usize,
    },
    /// An in-flight request became a tunnel (a WebSocket).
    Upgrade {
        pick: usize,
    },
    Advance {
        by_ms: u64,
    },
    /// Wake exactly at the engine's `poll_timeout`, as a driver does.
    WakeAtDeadline,
    Restart {
        group: u32,
    },
    /// The driver measured a process's memory.
    Memory {
        pick: usize,
        bytes: u64,
    },
    /// Always-restart mode on or off (`tmp/always_restart.txt` appearing or going).
    AlwaysRestart {
        group: u32,
        on: bool,
    },
    Detach {
        pick: usize,
    },
    Shutdown,
    /// An input about a request that ended or a process that exited: arrives late, changes
    /// nothing.
    Late {
        pick: usize,
        kind: u8,
    },
}

fn config_strategy() -> impl Strategy<Value = Config> {
    let durations_ms =
        |choices: &'static [u64]| proptest::sample::select(choices).prop_map(Duration::from_millis);
    let pool = (
        1usize..=6,
        durations_ms(&[0, 1_000, 30_000, 300_000]),
        durations_ms(&[1_000, 10_000]),
        durations_ms(&[5_000, 30_000]),
        durations_ms(&[100, 1_000]),
        durations_ms(&[1_000, 8_000, 60_000]),
        durations_ms(&[1_000, 10_000]),
        durations_ms(&[0, 100, 2_000]),
    )
        .prop_map(
            |(
                max_pool_size,
                pool_idle_time,
                kill_timeout,
                shutdown_timeout,
                backoff_initial,
                backoff_max,
                stable_uptime,
                crash_respawn_interval,
            )| PoolConfig {
                max_pool_size,
                pool_idle_time,
                kill_timeout,
                shutdown_timeout,
                backoff_initial,
                backoff_max: backoff_max.max(backoff_initial),
                stable_uptime,
                crash_respawn_interval,
            },
        );
    let group = (
        0usize..=2,
        0u32..=3,
        proptest::sample::select(&[0usize, 1, 2, 5][..]),
        proptest::sample::select(&[0u64, 1, 3, 10][..]),
        1usize..=3,
        durations_ms(&[5_000, 90_000]),
        durations_ms(&[0, 0, 2_000, 30_000]),
        durations_ms(&[0, 0, 1_000, 10_000]),
        1u32..=4,
        proptest::sample::select(&[0u64, 0, 100][..]),
    )
        .prop_map(
            |(
                min_instances,
                concurrency,
                max_request_queue_size,
                max_requests,
                max_spawn_concurrency,
                start_timeout,
                max_request_time,
                max_request_queue_time,
                target_concurrency,
                memory_limit_bytes,
            )| GroupConfig {
                name: String::new(),
                min_instances,
                concurrency,
                // At most the hard cap, as validation demands.
                target_concurrency: match concurrency {
                    0 => target_concurrency,
                    cap => target_concurrency.min(cap),
                },
                max_request_queue_size,
                max_requests,
                max_spawn_concurrency,
                start_timeout,
                max_request_time,
                max_request_queue_time,
                memory_limit_bytes,
            },
        );
    (pool, proptest::collection::vec(group, 1..=3)).prop_map(|(pool, mut groups)| {
        // Keep the minimums within the pool, as validation demands.
        let mut room = pool.max_pool_size;
        for (index, group) in groups.iter_mut().enumerate() {
            group.name = format!("app{index}");
            group.min_instances = group.min_instances.min(room);
            room -= group.min_instances;
        }
        Config { pool, groups }
    })
}

struct PoolModel;

impl ReferenceStateMachine for PoolModel {
    type State = Setup;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Setup> {
        (config_strategy(), proptest::sample::select(&[1u32, 8][..]))
            .prop_map(|(config, fault_weight)| Setup {
                config,
                fault_weight,
                next_request: 1,
            })
            .boxed()
    }

    fn transitions(state: &Setup) -> BoxedStrategy<Step> {
        let groups = state.config.groups.len() as u32;
        let request = state.next_request;
        let pick = any::<usize>;
        let faults = state.fault_weight;
        // Shrinking moves a step toward the first alternative: a short pause, nearly a no-op.
        prop_oneof![
            40 => (0u64..2_000).prop_map(|by_ms| Step::Advance { by_ms }),
            60 => (0..groups).prop_map(move |group| Step::Arrive { group, request }),
            50 => pick().prop_map(|pick| Step::Finish { pick }),
            8 => pick().prop_map(|pick| Step::ClientGone { pick }),
            8 => pick().prop_map(|pick| Step::ClientAbandon { pick }),
            40 => pick().prop_map(|pick| Step::Ready { pick }),
            faults => pick().prop_map(|pick| Step::SpawnFail { pick }),
            faults => pick().prop_map(|pick| Step::Crash { pick }),
            30 => pick().prop_map(|pick| Step::Reap { pick }),
            faults => pick().prop_map(|pick| Step::Refuse { pick }),
            faults => pick().prop_map(|pick| Step::ForwardFail { pick }),
            4 => pick().prop_map(|pick| Step::Upgrade { pick }),
            8 => (1_000u64..600_000).prop_map(|by_ms| Step::Advance { by_ms }),
            20 => Just(Step::WakeAtDeadline),
            4 => (0..groups).prop_map(|group| Step::Restart { group }),
            4 => (pick(), proptest::sample::select(&[50u64, 150][..]))
                .prop_map(|(pick, bytes)| Step::Memory { pick, bytes }),
            3 => (0..groups, any::<bool>()).prop_map(|(group, on)| Step::AlwaysRestart { group, on }),
            5 => pick().prop_map(|pick| Step::Detach { pick }),
            1 => Just(Step::Shutdown),
            6 => (pick(), 0u8..6).prop_map(|(pick, kind)| Step::Late { pick, kind }),
        ]
        .boxed()
    }

    fn apply(mut state: Setup, step: &Step) -> Setup {
        if let Step::Arrive { request, .. } = step {
            state.next_request = state.next_request.max(request + 1);
        }
        state
    }

    fn preconditions(state: &Setup, step: &Step) -> bool {
        let groups = state.config.groups.len() as u32;
        match step {
            // Request ids are the caller's to keep unique, even as shrinking reshapes steps.
            Step::Arrive { group, request } => *group < groups && *request >= state.next_request,
            Step::Restart { group } | Step::AlwaysRestart { group, .. } => *group < groups,
            _ => true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test: the engine, and the model of the world around it.

#[derive(Debug)]
struct ModelProcess {
    group: GroupId,
    /// The test reported it ready (the engine may have stopped it before).
    ready: bool,
    killed: Option<KillMode>,
    /// Why it was killed, from the first kill on.
    kill_reason: Option<KillReason>,
    sessions: BTreeSet<RequestId>,
    /// One of its requests ran for `max_request_time`: it is stopped with others in flight.
    timed_out: bool,
    /// Requests forwarded to it that reached it (a refused or failed forward did not).
    served: u64,
    /// The most `served` has been: a forward that fails later does not undo the decision
    /// its count led to.
    most_served: u64,
    /// A request that arrived in always-restart mode went to it (what an always-restart
    /// kill stands on: forwards to it that failed before that one, which `most_served`
    /// still counts, do not make it an ordinary process).
    took_fresh: bool,
    /// Requests forwarded to it, refused and failed forwards too (what `max_requests`
    /// counts).
    forwarded: u64,
    /// Its group's restart generation when it was spawned.
    generation: u32,
    /// When it became ready or a session of it last started or ended.
    last_used: Instant,
    /// Detached, or it refused a connection: stopping it says nothing about a restart.
    stopped_for_itself: bool,
    /// Measured above its group's memory limit while it served: replaced as an old one.
    over_memory_limit: bool,
}

/// What the model saw that can justify the reasons the engine gives: the inputs and commands
/// that make each reason possible. (Grounds, not predictions: the model does not re-derive
/// the engine's rules.)
#[derive(Clone, Debug, Default)]
struct Grounds {
    /// Groups a request arrived for.
    requested: BTreeSet<GroupId>,
    /// Groups told to restart.
    restarted: BTreeSet<GroupId>,
    /// Groups that have been in always-restart mode.
    fresh_seen: BTreeSet<GroupId>,
    /// Groups with a process that failed while serving: it crashed after it was ready,
    /// refused a connection or timed out a request.
    failed_serving: BTreeSet<GroupId>,
    /// Groups with a process that failed before it was ready.
    start_failed: BTreeSet<GroupId>,
    detached: BTreeSet<ProcessId>,
    refused: BTreeSet<ProcessId>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelRequest {
    Queued(GroupId),
    InFlight(GroupId, ProcessId),
}

struct Harness {
    engine: Engine,
    config: Config,
    now: Instant,
    processes: BTreeMap<ProcessId, ModelProcess>,
    exited: Vec<ProcessId>,
    last_process: Option<ProcessId>,
    requests: BTreeMap<RequestId, ModelRequest>,
    /// When each open request was last queued and when its current session started.
    request_times: BTreeMap<RequestId, (Instant, Instant)>,
    ended: BTreeSet<RequestId>,
    /// In-flight requests whose client left while the driver keeps the app's connection.
    abandoned: BTreeSet<RequestId>,
    /// Requests ended because their client left: the engine's `cancelled`.
    cancelled: u64,
    arrived: u64,
    shutdown_requested: bool,
    /// When the engine's shutdown deadline passes: `shutdown_timeout` after the request.
    shutdown_deadline: Option<Instant>,
    /// The request arriving in the current input, if one is.
    arriving: Option<RequestId>,
    /// The request the driver failed to forward in the current input, if one is.
    forward_failed: Option<RequestId>,
    /// Groups in always-restart mode.
    always_restart: BTreeSet<GroupId>,
    /// Requests that arrived in always-restart mode, with the first process id spawned after
    /// their arrival: only such a process, never used before, may serve them.
    fresh_from: BTreeMap<RequestId, ProcessId>,
    shutdown_complete: bool,
    grounds: Grounds,
    /// Each group's restart generation, bumped by each restart outside a shutdown.
    generations: BTreeMap<GroupId, u32>,
    /// New processes that became ready while old ones of their group served, not yet matched
    /// by an old one stopped: invariant 9 as seen from outside.
    handovers: BTreeMap<GroupId, usize>,
    /// Groups that have been in always-restart mode, which trades old processes for fresh
    /// ones on its own terms.
    always_restart_seen: BTreeSet<GroupId>,
    /// Every input with its instant, and the commands each gave: replayed for determinism.
    log: Vec<(Instant, Input)>,
    outputs: Vec<Vec<Command>>,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let mut engine = Engine::new(config.clone(), Instant::ZERO).expect("valid config");
        let commands: Vec<Command> = core::iter::from_fn(|| engine.poll_command()).collect();
        let mut harness = Harness {
            engine,
            config,
            now: Instant::ZERO,
            processes: BTreeMap::new(),
            exited: Vec::new(),
            last_process: None,
            requests: BTreeMap::new(),
            request_times: BTreeMap::new(),
            ended: BTreeSet::new(),
            abandoned: BTreeSet::new(),
            cancelled: 0,
            arrived: 0,
            shutdown_requested: false,
            shutdown_deadline: None,
            arriving: None,
            forward_failed: None,
            always_restart: BTreeSet::new(),
            fresh_from: BTreeMap::new(),
            shutdown_complete: false,
            grounds: Grounds::default(),
            generations: BTreeMap::new(),
            handovers: BTreeMap::new(),
            always_restart_seen: BTreeSet::new(),
            log: Vec::new(),
            outputs: vec![commands.clone()],
        };
        let mut owed_fails = BTreeMap::new();
        for command in commands {
            harness.observe(command, &mut owed_fails);
        }
        harness.check();
        harness
    }

    fn step(&mut self, step: Step) {
        let input = match step {
            Step::Arrive { group, request } => Input::RequestArrived {
                group: GroupId(group),
                request: RequestId(request),
            },
            // Now and then the exchange breaks instead (the app answered nonsense).
            Step::Finish { pick } => match self.nth_request(pick, true) {
                Some(request) if pick % 7 == 3 => Input::RequestFailed { request },
                Some(request) => Input::RequestFinished { request },
                None => Input::Tick,
            },
            Step::ClientGone { pick } => match self.nth_request(pick, false) {
                Some(request) => Input::ClientGone { request },
                None => Input::Tick,
            },
            Step::ClientAbandon { pick } => match self.nth_request(pick, false) {
                Some(request) => Input::ClientAbandoned { request },
                None => Input::Tick,
            },
            Step::Refuse { pick } => match self.nth_request(pick, true) {
                Some(request) => Input::ProcessRefused { request },
                None => Input::Tick,
            },
            Step::ForwardFail { pick } => match self.nth_request(pick, true) {
                Some(request) => Input::ForwardFailed {
                    request,
                    error: "Too many open files".into(),
                },
                None => Input::Tick,
            },
            Step::Upgrade { pick } => match self.nth_request(pick, true) {
                Some(request) => Input::SessionUpgraded { request },
                None => Input::Tick,
            },
            Step::Ready { pick } => match self.nth_process(pick, |p| !p.ready) {
                Some(process) => Input::ProcessReady { process },
                None => Input::Tick,
            },
            Step::SpawnFail { pick } => match self.nth_process(pick, |p| !p.ready) {
                Some(process) => Input::SpawnFailed {
                    process,
                    error: format!("exec of {process} failed"),
                },
                None => Input::Tick,
            },
            Step::Crash { pick } => match self.nth_process(pick, |_| true) {
                Some(process) => exit(process),
                None => Input::Tick,
            },
            Step::Reap { pick } => match self.nth_process(pick, |p| p.killed.is_some()) {
                Some(process) => exit(process),
                None => Input::Tick,
            },
            Step::Advance { by_ms } => {
                self.now = self.now + Duration::from_millis(by_ms);
                Input::Tick
            }
            Step::WakeAtDeadline => {
                if let Some(deadline) = self.engine.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                Input::Tick
            }
            Step::Restart { group } => Input::RestartGroup {
                group: GroupId(group),
            },
            Step::Memory { pick, bytes } => match self.nth_process(pick, |_| true) {
                Some(process) => Input::MemoryMeasured { process, bytes },
                None => Input::Tick,
            },
            Step::AlwaysRestart { group, on } => Input::SetAlwaysRestart {
                group: GroupId(group),
                on,
            },
            Step::Detach { pick } => match self.nth_process(pick, |_| true) {
                Some(process) => Input::DetachProcess { process },
                None => Input::Tick,
            },
            Step::Shutdown => Input::Shutdown,
            Step::Late { pick, kind } => self.late_input(pick, kind),
        };
        self.feed(input);
    }

    fn late_input(&self, pick: usize, kind: u8) -> Input {
        let request = (!self.ended.is_empty())
            .then(|| *self.ended.iter().nth(pick % self.ended.len()).unwrap());
        let process = (!self.exited.is_empty()).then(|| self.exited[pick % self.exited.len()]);
        match (kind, request, process) {
            (0, Some(request), _) => Input::RequestFinished { request },
            (1, Some(request), _) => Input::ClientGone { request },
            (2, _, Some(process)) => Input::ProcessReady { process },
            (3, _, Some(process)) => exit(process),
            (4, _, Some(process)) => Input::DetachProcess { process },
            (5, Some(request), _) => Input::ClientAbandoned { request },
            _ => Input::Tick,
        }
    }

    fn nth_request(&self, pick: usize, in_flight_only: bool) -> Option<RequestId> {
        let candidates: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| !in_flight_only || matches!(r, ModelRequest::InFlight(..)))
            .map(|(id, _)| *id)
            .collect();
        (!candidates.is_empty()).then(|| candidates[pick % candidates.len()])
    }

    fn nth_process(
        &self,
        pick: usize,
        wanted: impl Fn(&ModelProcess) -> bool,
    ) -> Option<ProcessId> {
        let candidates: Vec<ProcessId> = self
            .processes
            .iter()
            .filter(|(_, p)| wanted(p))
            .map(|(id, _)| *id)
            .collect();
        (!candidates.is_empty()).then(|| candidates[pick % candidates.len()])
    }

    /// Hands one input to the engine, updates the model with what the input itself means, then
    /// with every command it gave, checking each against the model.
    fn feed(&mut self, input: Input) {
        self.log.push((self.now, input.clone()));
        self.engine.handle(self.now, input.clone());
        let commands: Vec<Command> = core::iter::from_fn(|| self.engine.poll_command()).collect();
        self.outputs.push(commands.clone());
        // Requests the exited process held: each must fail in this very batch.
        let mut owed_fails: OwedFails = BTreeMap::new();
        match input {
            Input::RequestArrived { group, request } => {
                assert!(!self.requests.contains_key(&request) && !self.ended.contains(&request));
                self.arrived += 1;
                self.requests.insert(request, ModelRequest::Queued(group));
                self.request_times.insert(request, (self.now, self.now));
                self.arriving = Some(request);
                self.grounds.requested.insert(group);
                if self.always_restart.contains(&group) {
                    let next = ProcessId(self.last_process.map_or(1, |p| p.0 + 1));
                    self.fresh_from.insert(request, next);
                }
            }
            Input::RequestFinished { request } | Input::RequestFailed { request } => {
                if let Some(ModelRequest::InFlight(_, process)) = self.requests.get(&request) {
                    let p = self.processes.get_mut(process).unwrap();
                    p.sessions.remove(&request);
                    p.last_used = self.now;
                    // Its client had left: it counts as cancelled, whatever the app did.
                    self.cancelled += u64::from(self.abandoned.contains(&request));
                    self.end(request);
                }
            }
            // The session goes on (as a tunnel); nothing ends.
            Input::SessionUpgraded { .. } => {}
            Input::ClientGone { request } => {
                if let Some(ModelRequest::InFlight(_, process)) = self.requests.get(&request) {
                    let p = self.processes.get_mut(process).unwrap();
                    p.sessions.remove(&request);
                    p.last_used = self.now;
                }
                if self.requests.contains_key(&request) {
                    self.cancelled += 1;
                    self.end(request);
                }
            }
            // A queued request leaves; an in-flight one keeps its session until it ends.
            Input::ClientAbandoned { request } => {
                if let Some(ModelRequest::Queued(_)) = self.requests.get(&request) {
                    self.cancelled += 1;
                    self.end(request);
                } else if self.requests.contains_key(&request) {
                    self.abandoned.insert(request);
                }
            }
            Input::ProcessRefused { request } => {
                if let Some(ModelRequest::InFlight(group, process)) =
                    self.requests.get(&request).cloned()
                {
                    self.grounds.refused.insert(process);
                    self.grounds.failed_serving.insert(group);
                    let p = self.processes.get_mut(&process).unwrap();
                    // Nothing reached the app: the process has not served it.
                    p.served -= 1;
                    p.sessions.remove(&request);
                    p.last_used = self.now;
                    p.stopped_for_itself = true;
                    if self.abandoned.contains(&request) {
                        // Nobody waits for another process to serve it.
                        self.cancelled += 1;
                        self.end(request);
                    } else {
                        self.requests.insert(request, ModelRequest::Queued(group));
                        // Its queue time starts again: the wait at the process was not in a
                        // queue.
                        if let Some(times) = self.request_times.get_mut(&request) {
                            times.0 = self.now;
                        }
                    }
                }
            }
            Input::ForwardFailed { request, .. } => {
                if let Some(ModelRequest::InFlight(group, process)) =
                    self.requests.get(&request).cloned()
                {
                    let p = self.processes.get_mut(&process).unwrap();
                    p.served -= 1;
                    p.sessions.remove(&request);
                    p.last_used = self.now;
                    // Rejected in this very batch, as ferry's own failure.
                    self.requests.insert(request, ModelRequest::Queued(group));
                    self.forward_failed = Some(request);
                }
            }
            Input::ProcessReady { process } => self.note_ready(process),
            Input::SpawnFailed { process, .. } | Input::ProcessExited { process, .. } => {
                if let Some(p) = self.processes.remove(&process) {
                    self.exited.push(process);
                    // (A process whose start timed out may have been reported ready too late.)
                    if !p.ready || p.kill_reason == Some(KillReason::StartTimeout) {
                        self.grounds.start_failed.insert(p.group);
                    } else if p.killed.is_none() {
                        self.grounds.failed_serving.insert(p.group);
                    }
                    owed_fails.extend(p.sessions.iter().map(|r| (*r, (process, p.kill_reason))));
                }
            }
            Input::Shutdown => {
                if !self.shutdown_requested {
                    self.shutdown_deadline = Some(self.now + self.config.pool.shutdown_timeout);
                }
                self.shutdown_requested = true;
            }
            Input::SetAlwaysRestart { group, on } => {
                if on {
                    self.grounds.fresh_seen.insert(group);
                    self.always_restart_seen.insert(group);
                    self.always_restart.insert(group);
                } else {
                    self.always_restart.remove(&group);
                }
            }
            Input::RestartGroup { group } => {
                self.grounds.restarted.insert(group);
                if !self.shutdown_requested {
                    *self.generations.entry(group).or_default() += 1;
                }
            }
            Input::DetachProcess { process } => {
                self.grounds.detached.insert(process);
                if let Some(p) = self.processes.get_mut(&process) {
                    p.stopped_for_itself = true;
                }
            }
            Input::MemoryMeasured { process, bytes } => {
                let limit =
                    |group: GroupId| self.config.groups[group.0 as usize].memory_limit_bytes;
                if let Some(p) = self.processes.get_mut(&process) {
                    let limit = limit(p.group);
                    if limit != 0 && bytes > limit && p.ready && p.killed.is_none() {
                        p.over_memory_limit = true;
                    }
                }
            }
            Input::Tick => {}
        }
        for command in commands {
            self.observe(command, &mut owed_fails);
        }
        self.arriving = None;
        if let Some(request) = self.forward_failed.take() {
            assert!(
                !self.requests.contains_key(&request),
                "{request}, which ferry failed to forward, was not rejected"
            );
        }
        assert!(
            owed_fails.is_empty(),
            "requests of an exited process not failed: {owed_fails:?}"
        );
        self.check();
    }

    fn deadline_passed(&self) -> bool {
        self.shutdown_deadline.is_some_and(|at| self.now >= at)
    }

    fn end(&mut self, request: RequestId) {
        assert!(
            self.requests.remove(&request).is_some(),
            "{request} was not open"
        );
        assert!(self.ended.insert(request), "{request} ended twice");
        self.request_times.remove(&request);
        self.abandoned.remove(&request);
    }

    fn queued_in(&self, group: GroupId) -> usize {
        self.requests
            .values()
            .filter(|r| **r == ModelRequest::Queued(group))
            .count()
    }

    fn observe(&mut self, command: Command, owed_fails: &mut OwedFails) {
        match command {
            Command::Spawn {
                group,
                process,
                reason,
            } => {
                self.check_spawn_reason(group, reason);
                assert!(
                    !self.shutdown_requested,
                    "spawned {process} during shutdown"
                );
                assert!(
                    self.last_process.is_none_or(|last| process > last),
                    "{process} reused or out of order"
                );
                assert!((group.0 as usize) < self.config.groups.len());
                self.last_process = Some(process);
                let generation = self.generation(group);
                // One beyond the pool's size only for a restart's replacement (a surge).
                let (live, max) = (self.processes.len() + 1, self.config.pool.max_pool_size);
                let restarting = self.old_ones_serve(group);
                assert!(
                    live <= max || (live == max + 1 && restarting),
                    "{live} live processes counted from spawns and exits, max {max}, \
                     restarting {restarting}"
                );
                self.processes.insert(
                    process,
                    ModelProcess {
                        group,
                        ready: false,
                        killed: None,
                        kill_reason: None,
                        sessions: BTreeSet::new(),
                        timed_out: false,
                        served: 0,
                        most_served: 0,
                        took_fresh: false,
                        forwarded: 0,
                        generation,
                        last_used: self.now,
                        stopped_for_itself: false,
                        over_memory_limit: false,
                    },
                );
            }
            Command::Forward { request, process } => {
                let Some(&ModelRequest::Queued(group)) = self.requests.get(&request) else {
                    panic!("forwarded {request}, which is not waiting");
                };
                let concurrency = self.config.groups[group.0 as usize].concurrency as usize;
                let p = self
                    .processes
                    .get_mut(&process)
                    .unwrap_or_else(|| panic!("forwarded {request} to unknown {process}"));
                assert_eq!(
                    p.group, group,
                    "forwarded {request} to another group's process"
                );
                assert!(p.ready, "forwarded {request} to {process}, never ready");
                assert_eq!(p.killed, None, "forwarded {request} to killed {process}");
                assert!(
                    concurrency == 0 || p.sessions.len() < concurrency,
                    "forwarded {request} to full {process}"
                );
                if let Some(from) = self.fresh_from.get(&request) {
                    assert!(
                        process >= *from && p.served == 0,
                        "{request} arrived in always-restart mode (processes from {from}) but \
                         went to {process}, which served {}",
                        p.served
                    );
                    p.took_fresh = true;
                }
                p.served += 1;
                p.most_served = p.most_served.max(p.served);
                p.forwarded += 1;
                p.sessions.insert(request);
                p.last_used = self.now;
                self.requests
                    .insert(request, ModelRequest::InFlight(group, process));
                if let Some(times) = self.request_times.get_mut(&request) {
                    times.1 = self.now;
                }
            }
            Command::Reject { request, reason } => {
                let Some(&ModelRequest::Queued(group)) = self.requests.get(&request) else {
                    panic!("rejected {request}, which is not waiting");
                };
                match reason {
                    RejectReason::ShuttingDown => {
                        assert!(self.shutdown_requested);
                        // A request that waited when the stop began is served while time
                        // allows: refused only at the deadline, or when no process is left
                        // that could serve it (none starting; the model cannot tell a
                        // draining process from a ready one). While the oldest waiting request
                        // needs a fresh process (always-restart mode), only a process started
                        // after it arrived counts: the queue waits for that one.
                        let oldest_fresh = self
                            .fresh_from
                            .iter()
                            .filter(|(r, _)| {
                                self.requests.get(r) == Some(&ModelRequest::Queued(group))
                            })
                            .map(|(_, from)| *from)
                            .next();
                        let starting = self.processes.iter().any(|(id, p)| {
                            p.group == group
                                && !p.ready
                                && p.killed.is_none()
                                && oldest_fresh.is_none_or(|from| *id >= from)
                        });
                        assert!(
                            self.arriving == Some(request) || self.deadline_passed() || !starting,
                            "{request} refused during shutdown while a process starts for it"
                        );
                    }
                    RejectReason::QueueFull => {
                        let limit = self.config.groups[group.0 as usize].max_request_queue_size;
                        assert!(limit != 0 && self.queued_in(group) > limit);
                    }
                    RejectReason::OutOfResources { error } => {
                        assert!(!error.is_empty());
                        assert_eq!(self.forward_failed, Some(request), "{request} refused");
                    }
                    RejectReason::QueueTimeout => {
                        let limit = self.config.groups[group.0 as usize].max_request_queue_time;
                        let queued = self.request_times[&request].0;
                        assert!(
                            !limit.is_zero() && queued + limit <= self.now,
                            "{request} rejected for its queue time too early"
                        );
                    }
                    RejectReason::UnknownGroup { group } => {
                        panic!("{request} of {group} rejected: the group exists")
                    }
                    RejectReason::SpawnFailing { error } => {
                        assert!(!error.is_empty());
                        let spawning = self
                            .processes
                            .values()
                            .any(|p| p.group == group && !p.ready && p.killed.is_none());
                        assert!(!spawning, "spawns are failing, yet one is under way");
                    }
                }
                self.end(request);
            }
            Command::TimeOut { request, process } => {
                let Some(&ModelRequest::InFlight(group, holder)) = self.requests.get(&request)
                else {
                    panic!("timed out {request}, which is not in flight");
                };
                assert_eq!(holder, process, "timed out {request} on the wrong process");
                let limit = self.config.groups[group.0 as usize].max_request_time;
                let started = self.request_times[&request].1;
                assert!(
                    !limit.is_zero() && started + limit <= self.now,
                    "{request} timed out too early"
                );
                self.grounds.failed_serving.insert(group);
                let p = self.processes.get_mut(&process).unwrap();
                p.sessions.remove(&request);
                p.timed_out = true;
                p.last_used = self.now;
                self.end(request);
            }
            Command::Fail {
                request,
                process,
                reason,
            } => {
                let Some((holder, kill_reason)) = owed_fails.remove(&request) else {
                    panic!("failed {request} that {process} did not hold when it exited");
                };
                assert_eq!(holder, process, "failed {request} on the wrong process");
                match (reason, kill_reason) {
                    (FailReason::Stopped { reason }, Some(killed)) => assert_eq!(reason, killed),
                    (FailReason::Crashed { description }, None) => assert!(!description.is_empty()),
                    (reason, killed) => {
                        panic!("{request} failed as {reason:?}, its process was killed {killed:?}")
                    }
                }
                self.end(request);
            }
            Command::Kill {
                process,
                mode,
                reason,
            } => {
                self.check_kill_reason(process, mode, reason);
                if mode == KillMode::Graceful {
                    self.check_handover(process);
                }
                let deadline_passed = self.deadline_passed();
                let p = self
                    .processes
                    .get_mut(&process)
                    .unwrap_or_else(|| panic!("killed unknown {process}"));
                match mode {
                    KillMode::Graceful => {
                        assert_eq!(p.killed, None, "{process} killed twice");
                        // Only the shutdown deadline cuts requests off.
                        assert!(
                            p.sessions.is_empty() || deadline_passed || p.timed_out,
                            "{process} stopped while serving"
                        );
                    }
                    KillMode::Force => {
                        assert_ne!(p.killed, Some(KillMode::Force), "{process} forced twice");
                        // SIGTERM comes first, except for a process that never started
                        // (its start timed out) and one left with only its timed-out request.
                        assert!(
                            p.killed == Some(KillMode::Graceful)
                                || !p.ready
                                || (reason == KillReason::RequestTimeout && p.sessions.is_empty()),
                            "{process} forced without being asked to stop first"
                        );
                        assert!(p.sessions.is_empty() || deadline_passed || p.timed_out);
                    }
                }
                p.killed = Some(mode);
                p.kill_reason.get_or_insert(reason);
            }
            Command::RestartReport {
                group,
                generation,
                outcome,
            } => {
                assert!(
                    generation >= 1 && generation <= self.generation(group),
                    "{group} reported restart {generation} of {}",
                    self.generation(group)
                );
                match outcome {
                    RestartOutcome::Failed { error } => assert!(!error.is_empty()),
                    RestartOutcome::Done => {}
                    RestartOutcome::InProgress => panic!("{group} reported a restart under way"),
                }
            }
            Command::ShutdownComplete => {
                assert!(self.shutdown_requested && !self.shutdown_complete);
                assert!(self.processes.is_empty() && self.requests.is_empty());
                self.shutdown_complete = true;
            }
        }
    }

    /// A spawn's reason has grounds in what the model saw.
    fn check_spawn_reason(&self, group: GroupId, reason: SpawnReason) {
        let config = &self.config.groups[group.0 as usize];
        let g = &self.grounds;
        let fresh_waiting = self
            .fresh_from
            .keys()
            .any(|request| self.requests.get(request) == Some(&ModelRequest::Queued(group)));
        let grounded = match reason {
            SpawnReason::MinInstances => config.min_instances > 0,
            SpawnReason::Demand => g.requested.contains(&group),
            SpawnReason::AlwaysRestart => g.fresh_seen.contains(&group) && fresh_waiting,
            SpawnReason::Restart => g.restarted.contains(&group),
            SpawnReason::MaxRequests => config.max_requests != 0,
            SpawnReason::Replacement => g.failed_serving.contains(&group),
            SpawnReason::StartRetry => g.start_failed.contains(&group),
            SpawnReason::MemoryLimit => config.memory_limit_bytes != 0,
        };
        assert!(grounded, "a spawn for {group} said {reason:?}: {g:?}");
    }

    /// A kill's reason has grounds in what the model saw; a forced kill after a graceful one
    /// gives the same reason.
    fn check_kill_reason(&self, process: ProcessId, mode: KillMode, reason: KillReason) {
        let p = &self.processes[&process];
        if let Some(first) = p.kill_reason {
            assert_eq!(reason, first, "{process} was first killed for {first:?}");
            return;
        }
        let config = &self.config.groups[p.group.0 as usize];
        let g = &self.grounds;
        let grounded = match reason {
            KillReason::Idle => {
                p.ready && p.sessions.is_empty() && !self.config.pool.pool_idle_time.is_zero()
            }
            KillReason::MaxRequests => {
                config.max_requests != 0 && p.most_served >= config.max_requests
            }
            KillReason::AlwaysRestart => {
                g.fresh_seen.contains(&p.group) && p.took_fresh && p.served <= 1
            }
            KillReason::Restart => g.restarted.contains(&p.group),
            KillReason::Detached => g.detached.contains(&process),
            KillReason::MakeRoom => {
                p.sessions.is_empty() && self.processes.len() >= self.config.pool.max_pool_size
            }
            KillReason::Shutdown => self.shutdown_requested,
            KillReason::StartTimeout => !p.ready && mode == KillMode::Force,
            KillReason::RequestTimeout => p.timed_out,
            KillReason::ConnectionRefused => g.refused.contains(&process),
            KillReason::MemoryLimit => p.over_memory_limit,
        };
        assert!(
            grounded,
            "{process} was killed for {reason:?}: {p:?}, {g:?}"
        );
    }

    fn generation(&self, group: GroupId) -> u32 {
        self.generations.get(&group).copied().unwrap_or(0)
    }

    /// Whether a process of an old generation serves in the group (a restart is under way).
    fn old_ones_serve(&self, group: GroupId) -> bool {
        let generation = self.generation(group);
        self.processes.values().any(|p| {
            p.group == group
                && p.ready
                && p.killed.is_none()
                && (p.generation < generation || p.over_memory_limit)
        })
    }

    fn note_ready(&mut self, process: ProcessId) {
        let restarting = self
            .processes
            .get(&process)
            .is_some_and(|p| self.old_ones_serve(p.group));
        let Some(p) = self.processes.get_mut(&process) else {
            return;
        };
        let current = p.generation == self.generations.get(&p.group).copied().unwrap_or(0);
        if !p.ready && p.killed.is_none() {
            p.last_used = self.now;
            if current && restarting {
                *self.handovers.entry(p.group).or_default() += 1;
            }
        }
        p.ready = true;
    }

    /// Invariant 9 from outside: an old process that served is stopped during a restart only
    /// against a new one that became ready, unless it goes for its own reasons (idle for
    /// `pool_idle_time`, at `max_requests`, timed out, refused, detached, a shutdown, room
    /// for another group's waiting requests, always-restart mode).
    fn check_handover(&mut self, process: ProcessId) {
        let Some(p) = self.processes.get(&process) else {
            return;
        };
        let group = p.group;
        let config = &self.config.groups[group.0 as usize];
        let idle_time = self.config.pool.pool_idle_time;
        let idle = !idle_time.is_zero() && p.last_used + idle_time <= self.now;
        let worn_out = config.max_requests != 0 && p.forwarded >= config.max_requests;
        // Another group's waiting requests, restart or min_instances may take an idle
        // process for room.
        let short_of_min = |g: usize| {
            let live = self.processes.values();
            let live = live.filter(|p| p.group.0 as usize == g && p.killed.is_none());
            live.count() < self.config.groups[g].min_instances
        };
        let others_wait = self
            .requests
            .values()
            .any(|r| matches!(r, ModelRequest::Queued(g) if *g != group))
            // Another group's restart, or its process over the memory limit (replaced the
            // same way, also in a group that never restarted), may take room.
            || (0..self.config.groups.len() as u32)
                .map(GroupId)
                .any(|g| g != group && self.old_ones_serve(g))
            || (0..self.config.groups.len()).any(|g| g != group.0 as usize && short_of_min(g));
        let own_reasons = idle
            || worn_out
            || p.timed_out
            || p.stopped_for_itself
            || others_wait
            || self.shutdown_requested
            || self.always_restart_seen.contains(&group);
        let outdated = p.generation < self.generation(group) || p.over_memory_limit;
        if !p.ready || !outdated || own_reasons {
            return;
        }
        let credit = self.handovers.entry(group).or_default();
        assert!(
            *credit > 0,
            "{process} of generation {} stopped before a replacement of generation {} was ready",
            p.generation,
            self.generation(group)
        );
        *credit -= 1;
    }

    /// The engine's own invariants, and its counts against the model's.
    fn check(&self) {
        if let Err(violation) = self.engine.check_invariants() {
            panic!("{violation}");
        }
        let in_flight = self
            .requests
            .values()
            .filter(|r| matches!(r, ModelRequest::InFlight(..)))
            .count();
        let queued = self.requests.len() - in_flight;
        let status = self.engine.status();
        assert_eq!(status.process_count, self.processes.len());
        assert_eq!(self.engine.busy_sessions(), in_flight);
        assert_eq!(status.queued, queued);
        let totals = status.totals;
        assert_eq!(totals.arrived, self.arrived);
        assert_eq!(
            totals.served + totals.rejected + totals.failed + totals.cancelled,
            self.ended.len() as u64
        );
        assert_eq!(totals.cancelled, self.cancelled);
        for group in &status.groups {
            for p in &group.processes {
                let model = &self.processes[&p.id];
                assert_eq!(p.sessions as usize, model.sessions.len(), "{}", p.id);
                if model.killed.is_some() {
                    assert_eq!(p.state, ProcessState::Stopping, "{} was killed", p.id);
                }
            }
        }
    }

    /// Liveness: no more faults; the OS and the clients do what they are told, promptly; time
    /// passes. Everything must settle.
    fn settle(&mut self) {
        let groups = self.config.groups.clone();
        let pool_full_of_minimums =
            groups.iter().map(|g| g.min_instances).sum::<usize>() == self.config.pool.max_pool_size;
        // The one wait that need not end: every slot holds some group's minimum.
        let may_starve = move |group: GroupId| {
            pool_full_of_minimums && groups[group.0 as usize].min_instances == 0
        };
        // With no faults, the longest wait is a backoff that began just before, or the crash
        // policy's spawn-rate limit: each crash so far may have pushed its schedule one
        // `crash_respawn_interval` later (a 2 s interval beyond a 1 s `backoff_max` left a
        // request waiting past the bound this had without it).
        let crashes = u32::try_from(self.engine.status().totals.crashes).unwrap_or(u32::MAX);
        let crash_pause = self
            .config
            .pool
            .crash_respawn_interval
            .saturating_mul(crashes);
        let served_by =
            self.now + self.config.pool.backoff_max + crash_pause + Duration::from_secs(1);
        for round in 0.. {
            assert!(round < 100_000, "the pool did not settle");
            if self.now > served_by {
                let late = self.requests.iter().find(|(_, r)| match r {
                    ModelRequest::Queued(group) => !may_starve(*group),
                    ModelRequest::InFlight(..) => true,
                });
                assert_eq!(late, None, "still waiting at {:?}", self.now);
            }
            let mut inputs = Vec::new();
            for (id, p) in &self.processes {
                if p.killed.is_some() {
                    inputs.push(exit(*id));
                } else if !p.ready {
                    inputs.push(Input::ProcessReady { process: *id });
                }
            }
            for (id, r) in &self.requests {
                if let ModelRequest::InFlight(..) = r {
                    inputs.push(Input::RequestFinished { request: *id });
                }
            }
            if inputs.is_empty() {
                match self.engine.poll_timeout() {
                    Some(deadline) => {
                        self.now = self.now.max(deadline);
                        inputs.push(Input::Tick);
                    }
                    None => break,
                }
            }
            for input in inputs {
                self.feed(input);
            }
        }
        let starving: Vec<RequestId> = self.requests.keys().copied().collect();
        for request in starving {
            let ModelRequest::Queued(group) = self.requests[&request] else {
                panic!("{request} still in flight after settling");
            };
            let groups = &self.config.groups;
            let pool_full_of_minimums = groups.iter().map(|g| g.min_instances).sum::<usize>()
                == self.config.pool.max_pool_size;
            assert!(
                pool_full_of_minimums && groups[group.0 as usize].min_instances == 0,
                "{request} of {group} still waits after settling"
            );
            self.feed(Input::ClientGone { request });
        }
        assert!(self.requests.is_empty());
        let status = self.engine.status();
        if self.shutdown_requested {
            assert!(self.shutdown_complete, "shutdown did not complete");
            assert_eq!(status.process_count, 0);
            return;
        }
        for (group, config) in status.groups.iter().zip(&self.config.groups) {
            let ready = group
                .processes
                .iter()
                .filter(|p| p.state == ProcessState::Ready);
            assert_eq!(ready.clone().count(), group.processes.len(), "{group:?}");
            assert!(
                ready.clone().all(|p| p.generation == group.generation),
                "{group:?}"
            );
            // Every restart reached an outcome.
            assert!(
                group
                    .restart
                    .as_ref()
                    .is_none_or(|r| r.outcome != RestartOutcome::InProgress),
                "{group:?}"
            );
            if self.config.pool.pool_idle_time.is_zero() {
                assert!(group.processes.len() >= config.min_instances, "{group:?}");
            } else {
                assert_eq!(group.processes.len(), config.min_instances, "{group:?}");
            }
        }
    }

    /// The same inputs at the same instants give the same commands.
    fn replay(&self) {
        let mut twin = Engine::new(self.config.clone(), Instant::ZERO).unwrap();
        let mut outputs = vec![core::iter::from_fn(|| twin.poll_command()).collect::<Vec<_>>()];
        for (now, input) in &self.log {
            twin.handle(*now, input.clone());
            outputs.push(core::iter::from_fn(|| twin.poll_command()).collect());
        }
        assert!(outputs == self.outputs, "a replay gave different commands");
        assert_eq!(twin.status(), self.engine.status());
    }
}

fn exit(process: ProcessId) -> Input {
    Input::ProcessExited {
        process,
        description: "killed by signal 9".into(),
    }
}

/// Requests an exited process held, with the process and why it was killed, if it was: each
/// must fail in the same batch.
type OwedFails = BTreeMap<RequestId, (ProcessId, Option<KillReason>)>;

struct PoolTest;

impl StateMachineTest for PoolTest {
    type SystemUnderTest = Harness;
    type Reference = PoolModel;

    fn init_test(setup: &Setup) -> Harness {
        Harness::new(setup.config.clone())
    }

    fn apply(mut harness: Harness, _: &Setup, step: Step) -> Harness {
        harness.step(step);
        harness
    }

    fn teardown(mut harness: Harness) {
        harness.settle();
        harness.replay();
    }
}
