//! The simulation loop: virtual time, the engine, and the carrying out of its commands.
//!
//! The simulator stands where the driver stands: it turns what happens (a client sends, a
//! process becomes ready, exits, finishes a request) into engine inputs and carries out the
//! engine's commands the way the driver would. It makes no decision about the pool.

use crate::clients::{Source, SourceKind};
use crate::dist::Sampler;
use crate::events::{EventKind, EventQueue};
use crate::model::{AppProcess, AppState, Ending, ProcessRecord};
use crate::requests::{OpenRequest, RequestTable, NO_CLIENT};
use crate::scenario::{ProcessPick, Scenario};
use crate::series::TimeSeries;
use crate::stats::{new_histogram, PoolSize, Slot, Timeline};
use ferry_engine::{Command, Engine, GroupId, Input, Instant, PoolStatus, ProcessId, RequestId};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The only group: scenarios model one app.
pub(crate) const GROUP: GroupId = GroupId(0);

/// A virtual instant that keeps receiving events without time moving on is a livelock (say,
/// a spawn that fails in zero time, retried at once): stop instead of spinning forever. The
/// limit grows with the closed-loop clients, which may all send at one instant.
const EVENTS_AT_ONE_INSTANT_BASE: u64 = 10_000;

/// Independent random streams, so that e.g. adding a fault does not reshuffle service times.
#[derive(Clone, Copy)]
enum Stream {
    Traffic = 1,
    App = 2,
    Faults = 3,
}

fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// What the sim counts itself, to cross-check the engine's totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub arrived: u64,
    pub served: u64,
    pub rejected: u64,
    pub rejected_queue_full: u64,
    pub rejected_spawn_failing: u64,
    pub rejected_shutting_down: u64,
    pub failed: u64,
    /// Of `failed`: answered 504 after `max_request_time`.
    pub timed_out: u64,
    pub rejected_queue_timeout: u64,
    pub cancelled: u64,
    pub fault_kills: u64,
    pub injected_hangs: u64,
    pub injected_crashes: u64,
    pub injected_spawn_failures: u64,
}

/// A scheduled fault, drawn on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub at_nanos: u64,
    pub label: String,
}

/// A point of the run where the sim looks without acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Observation {
    /// Remember each ready process's served count for an expectation's `spread`.
    SpreadFrom(usize),
    Status(usize),
    Expect(usize),
}

pub struct Simulation<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) seed: u64,
    pub(crate) engine: Engine,
    pub(crate) now: u64,
    pub(crate) queue: EventQueue,
    pub(crate) requests: RequestTable,
    pub(crate) processes: BTreeMap<ProcessId, AppProcess>,
    pub(crate) finished: Vec<ProcessRecord>,
    pub(crate) sources: Vec<Source>,
    pub(crate) spawn_time: Sampler,
    pub(crate) service_time: Sampler,
    pub(crate) shutdown_time: Sampler,
    pub(crate) die_after_ready: Option<Sampler>,
    rng_traffic: ChaCha8Rng,
    pub(crate) rng_app: ChaCha8Rng,
    rng_faults: ChaCha8Rng,
    /// Off in the swarm's liveness phase: no crash or spawn failure is injected.
    pub(crate) faults_on: bool,
    pub(crate) forwarded_total: u64,
    pub(crate) last_process_id: u64,
    pub(crate) counts: Counts,
    pub(crate) latency: Histogram<u64>,
    pub(crate) queue_wait: Histogram<u64>,
    pub(crate) rejection_latency: Histogram<u64>,
    /// Least and most time from last use to kill over the idle shutdowns.
    pub(crate) idle_after_nanos: Option<(u64, u64)>,
    pub(crate) pool_size: PoolSize,
    pub(crate) timeline: Timeline,
    pub(crate) series: TimeSeries,
    pub(crate) markers: Vec<Marker>,
    observations: Vec<(u64, Observation)>,
    next_observation: usize,
    pub(crate) spread_from: BTreeMap<usize, BTreeMap<ProcessId, u64>>,
    pub(crate) snapshots: Vec<(u64, PoolStatus)>,
    pub(crate) expect_results: Vec<crate::checks::ExpectResult>,
    /// Run the engine's own invariant checks after every event (swarm).
    check_invariants: bool,
    pub(crate) violation: Option<String>,
    pub(crate) shutdown_completes: u32,
    pub(crate) commands: Vec<Command>,
    events_at_now: u64,
    events_at_one_instant_max: u64,
    pub(crate) events_total: u64,
}

impl<'a> Simulation<'a> {
    pub fn new(scenario: &'a Scenario, seed: u64, check_invariants: bool) -> Simulation<'a> {
        #[allow(unused_mut)]
        let mut engine = Engine::new(scenario.engine_config(), Instant::ZERO)
            .expect("scenarios are validated before they run");
        #[cfg(feature = "sabotage")]
        if let Some(sabotage) = crate::sabotage::current() {
            engine.sabotage(sabotage);
        }
        let duration = scenario.duration.0;
        let mut sources: Vec<Source> = scenario
            .traffic
            .iter()
            .map(|t| Source::new(t, scenario.duration))
            .collect();
        if scenario.replay.is_some() {
            sources.push(Source::replay(scenario.duration));
        }
        let mut observations = Vec::new();
        for (index, expect) in scenario.expect.iter().enumerate() {
            observations.push((
                expect.at.map_or(duration, |d| d.0),
                Observation::Expect(index),
            ));
            if let Some(spread) = &expect.spread {
                observations.push((spread.from.0, Observation::SpreadFrom(index)));
            }
        }
        for (index, status) in scenario.status.iter().enumerate() {
            observations.push((status.at.0, Observation::Status(index)));
        }
        observations.sort();
        let mut sim = Simulation {
            scenario,
            seed,
            engine,
            now: 0,
            queue: EventQueue::default(),
            requests: RequestTable::default(),
            processes: BTreeMap::new(),
            finished: Vec::new(),
            sources,
            spawn_time: scenario.app.spawn_time.sampler(),
            service_time: scenario.app.service_time.sampler(),
            shutdown_time: scenario.app.shutdown_time.sampler(),
            die_after_ready: scenario.app.die_after_ready.as_ref().map(|d| d.sampler()),
            rng_traffic: stream(seed, Stream::Traffic),
            rng_app: stream(seed, Stream::App),
            rng_faults: stream(seed, Stream::Faults),
            faults_on: true,
            forwarded_total: 0,
            last_process_id: 0,
            counts: Counts::default(),
            latency: new_histogram(),
            queue_wait: new_histogram(),
            rejection_latency: new_histogram(),
            idle_after_nanos: None,
            pool_size: PoolSize::new(0),
            timeline: Timeline::new(duration),
            series: TimeSeries::new(),
            markers: Vec::new(),
            observations,
            next_observation: 0,
            spread_from: BTreeMap::new(),
            snapshots: Vec::new(),
            expect_results: Vec::new(),
            check_invariants,
            violation: None,
            shutdown_completes: 0,
            commands: Vec::new(),
            events_at_now: 0,
            events_at_one_instant_max: EVENTS_AT_ONE_INSTANT_BASE
                + 4 * scenario
                    .traffic
                    .iter()
                    .map(|t| u64::from(t.clients.unwrap_or(0)))
                    .sum::<u64>(),
            events_total: 0,
        };
        sim.pool_size = PoolSize::new(sim.engine.process_count() as u64);
        sim.drain_commands();
        sim.start_traffic();
        for (index, fault) in scenario.fault.iter().enumerate() {
            sim.queue.schedule(
                fault.at.0,
                EventKind::Fault {
                    index: index as u32,
                },
            );
        }
        sim.after_event();
        sim
    }

    fn start_traffic(&mut self) {
        for index in 0..self.sources.len() {
            self.start_source(index);
        }
    }

    /// Adds traffic from now on (the swarm's light load after its safety phase).
    pub(crate) fn add_source(&mut self, source: Source) {
        self.sources.push(source);
        self.start_source(self.sources.len() - 1);
    }

    fn start_source(&mut self, index: usize) {
        let source = &self.sources[index];
        match source.kind {
            SourceKind::Open { .. } => {
                if let Some(at) = source.next_arrival(source.start_nanos, &mut self.rng_traffic) {
                    self.queue.schedule(
                        at,
                        EventKind::OpenArrival {
                            source: index as u32,
                        },
                    );
                }
            }
            SourceKind::Replay => self.schedule_replay(0),
            SourceKind::Closed { clients } => {
                for client in 0..clients {
                    let kind = EventKind::ClientSend {
                        source: index as u32,
                        client,
                    };
                    self.queue.schedule(source.start_nanos, kind);
                }
            }
        }
    }

    /// Runs every event and engine timer due at or before `until`, and every observation
    /// up to it. Stops early at the first violation.
    pub fn run_until(&mut self, until: u64) {
        while self.violation.is_none() {
            let next_event = self.queue.next_time();
            let next_timer = self.engine.poll_timeout().map(Instant::as_nanos);
            let next = match (next_event, next_timer) {
                (Some(e), Some(t)) => Some(e.min(t)),
                (e, t) => e.or(t),
            };
            self.observe_before(next.unwrap_or(u64::MAX).min(until.saturating_add(1)));
            let Some(next) = next.filter(|at| *at <= until) else {
                break;
            };
            self.sample_series_before(next);
            self.advance_to(next);
            if next_timer == Some(next) && next_event.is_none_or(|e| e > next) {
                self.deliver(Input::Tick);
            } else {
                let event = self.queue.pop().expect("an event is due");
                self.handle_event(event.kind);
            }
            self.after_event();
        }
        if self.violation.is_none() && self.now < until {
            self.advance_to(until);
        }
        self.sample_series_before(until.saturating_add(1));
    }

    fn advance_to(&mut self, at: u64) {
        if at > self.now {
            self.now = at;
            self.events_at_now = 0;
        }
        self.events_at_now += 1;
        if self.events_at_now > self.events_at_one_instant_max {
            let limit = self.events_at_one_instant_max;
            self.violate(format!(
                "virtual time does not advance: over {limit} events at {}",
                crate::duration::SimDuration(self.now)
            ));
        }
    }

    /// Observations at instants before `limit` (exclusive): they see every event up to them.
    fn observe_before(&mut self, limit: u64) {
        while let Some(&(at, observation)) = self.observations.get(self.next_observation) {
            if at >= limit {
                return;
            }
            self.next_observation += 1;
            match observation {
                Observation::SpreadFrom(index) => {
                    let served = self
                        .processes
                        .values()
                        .filter(|p| p.state == AppState::Ready && p.kill.is_none())
                        .map(|p| (p.id, p.served))
                        .collect();
                    self.spread_from.insert(index, served);
                }
                Observation::Status(_) => {
                    let mut status = self.engine.status();
                    status.now = Instant::from_nanos(at);
                    self.snapshots.push((at, status));
                }
                Observation::Expect(index) => {
                    let results = crate::checks::evaluate(self, index, at);
                    self.expect_results.extend(results);
                }
            }
        }
    }

    fn handle_event(&mut self, kind: EventKind) {
        self.events_total += 1;
        match kind {
            EventKind::OpenArrival { source } => {
                let next =
                    self.sources[source as usize].next_arrival(self.now, &mut self.rng_traffic);
                if let Some(at) = next {
                    self.queue.schedule(at, EventKind::OpenArrival { source });
                }
                let service_nanos = self.sources[source as usize].service_nanos;
                self.send_request(source, NO_CLIENT, service_nanos);
            }
            EventKind::ClientSend { source, client } => {
                self.send_request(source, client, None);
            }
            EventKind::ReplayArrival { index } => self.replay_arrival(index as usize),
            EventKind::ServiceDone { request, process } => self.service_done(request, process),
            EventKind::CrashWhileServing { process } => {
                if self.process_gone(process, Ending::Crashed) {
                    self.counts.injected_crashes += 1;
                    let description = "killed by signal 11 (SIGSEGV)".to_string();
                    self.deliver(Input::ProcessExited {
                        process,
                        description,
                    });
                }
            }
            EventKind::Disconnect { request } => self.disconnect(request),
            EventKind::LeaveQueue { request } => {
                if self
                    .requests
                    .get(request)
                    .is_some_and(|r| r.process.is_none())
                {
                    self.disconnect(request);
                }
            }
            EventKind::SpawnReady { process } => {
                let now = self.now;
                let Some(p) = self.processes.get_mut(&process) else {
                    return;
                };
                if p.state != AppState::Spawning {
                    return;
                }
                p.state = AppState::Ready;
                p.ready_at_nanos = Some(now);
                p.last_use_nanos = now;
                self.deliver(Input::ProcessReady { process });
                if let (true, Some(lifetime)) = (self.faults_on, &self.die_after_ready) {
                    let at = now + lifetime.sample(&mut self.rng_app);
                    self.queue
                        .schedule(at, EventKind::CrashWhileServing { process });
                }
            }
            EventKind::SpawnExit { process } => {
                if self.process_gone(process, Ending::SpawnFailed) {
                    let description = "exited with status 1".to_string();
                    self.deliver(Input::ProcessExited {
                        process,
                        description,
                    });
                }
            }
            EventKind::SpawnExecFailed { process } => {
                if self.process_gone(process, Ending::SpawnFailed) {
                    let error = "cannot execute the app: No such file or directory".to_string();
                    self.deliver(Input::SpawnFailed { process, error });
                }
            }
            EventKind::Exit { process, forced } => {
                if self.process_gone(process, Ending::Stopped) {
                    let description = if forced {
                        "killed by signal 9 (SIGKILL)"
                    } else {
                        "exited with status 0"
                    };
                    let description = description.to_string();
                    self.deliver(Input::ProcessExited {
                        process,
                        description,
                    });
                }
            }
            EventKind::Fault { index } => self.apply_fault(index as usize),
        }
    }

    pub(crate) fn send_request(
        &mut self,
        source: u32,
        client: u32,
        service_nanos: Option<u64>,
    ) -> RequestId {
        let request = self.requests.insert(OpenRequest {
            source,
            client,
            sent_at_nanos: self.now,
            process: None,
            service_nanos,
        });
        self.counts.arrived += 1;
        if let Some(after) = self.sources[source as usize].disconnect_after_nanos {
            self.queue
                .schedule(self.now + after, EventKind::Disconnect { request });
        }
        self.deliver(Input::RequestArrived {
            group: GROUP,
            request,
        });
        request
    }

    fn service_done(&mut self, request: RequestId, process: ProcessId) {
        match self.requests.get(request) {
            Some(open) if open.process == Some(process) => {}
            _ => return, // cancelled or failed meanwhile
        }
        if self.processes.get(&process).is_some_and(|p| p.hung) {
            return; // a hung process answers nothing
        }
        let open = self.requests.end(request).expect("checked open");
        self.counts.served += 1;
        self.latency
            .saturating_record(self.now - open.sent_at_nanos);
        if let Some(p) = self.processes.get_mut(&process) {
            p.in_flight -= 1;
            p.served += 1;
            p.last_use_nanos = self.now;
        }
        self.deliver(Input::RequestFinished { request });
        self.client_answered(&open, false);
    }

    fn disconnect(&mut self, request: RequestId) {
        let Some(open) = self.requests.end(request) else {
            return;
        };
        self.counts.cancelled += 1;
        if let Some(p) = open.process.and_then(|id| self.processes.get_mut(&id)) {
            p.in_flight -= 1;
            p.last_use_nanos = self.now;
        }
        self.deliver(Input::ClientGone { request });
        self.client_answered(&open, false);
    }

    /// A closed-loop client got its answer (`rejected`: a 503) or gave up: it sends again.
    pub(crate) fn client_answered(&mut self, open: &OpenRequest, rejected: bool) {
        if open.client == NO_CLIENT {
            return;
        }
        let source = &self.sources[open.source as usize];
        if let Some(at) = source.next_send(self.now, rejected, &mut self.rng_traffic) {
            let kind = EventKind::ClientSend {
                source: open.source,
                client: open.client,
            };
            self.queue.schedule(at, kind);
        }
    }

    fn apply_fault(&mut self, index: usize) {
        let fault = &self.scenario.fault[index];
        let label;
        if let Some(pick) = fault.kill {
            match self.pick_process(pick) {
                Some(process) => {
                    label = format!("kill {process}");
                    self.process_gone(process, Ending::KilledByFault);
                    self.counts.fault_kills += 1;
                    let description = "killed by signal 9 (SIGKILL)".to_string();
                    self.deliver(Input::ProcessExited {
                        process,
                        description,
                    });
                }
                None => label = "kill: no live process".to_string(),
            }
        } else if let Some(pick) = fault.detach {
            match self.pick_process(pick) {
                Some(process) => {
                    label = format!("detach {process}");
                    self.deliver(Input::DetachProcess { process });
                }
                None => label = "detach: no live process".to_string(),
            }
        } else {
            label = "restart".to_string();
            self.deliver(Input::RestartGroup { group: GROUP });
        }
        self.markers.push(Marker {
            at_nanos: self.now,
            label,
        });
    }

    /// Live processes in the order they were spawned.
    fn pick_process(&mut self, pick: ProcessPick) -> Option<ProcessId> {
        let live = self.processes.len();
        let nth = match pick {
            ProcessPick::Nth(n) => n - 1,
            ProcessPick::Random if live > 0 => self.rng_faults.random_range(0..live),
            ProcessPick::Random => return None,
        };
        self.processes.keys().nth(nth).copied()
    }

    /// The sim's own checks after every event; the engine's too when asked.
    fn after_event(&mut self) {
        let processes = self.engine.process_count();
        self.timeline.record(
            self.now,
            Slot {
                processes: processes as u32,
                busy: self.requests.in_flight() as u32,
                queue: self.requests.queued() as u32,
                busy_area: 0,
            },
        );
        self.pool_size.record(self.now, processes as u64);
        if processes != self.processes.len() {
            return self.violate(format!(
                "the engine counts {processes} live processes, the OS has {}",
                self.processes.len()
            ));
        }
        let totals = self.engine.totals();
        let c = &self.counts;
        let ours = [c.arrived, c.served, c.rejected, c.failed, c.cancelled];
        let theirs = [
            totals.arrived,
            totals.served,
            totals.rejected,
            totals.failed,
            totals.cancelled,
        ];
        if ours != theirs {
            return self.violate(format!(
                "requests arrived/served/rejected/failed/cancelled: the clients saw {ours:?}, the engine counts {theirs:?}"
            ));
        }
        let queued = self.engine.queue_len(GROUP);
        if queued != self.requests.queued() {
            return self.violate(format!(
                "the engine queues {queued} requests; {} arrived and are neither in a process nor ended",
                self.requests.queued()
            ));
        }
        // Debug builds of the engine check every invariant inside `handle` already (a broken
        // one panics, which `deliver` turns into a violation): checking twice only costs time.
        // A sabotaged engine does not panic: its violations are for the checker to find.
        let engine_checks_itself = cfg!(debug_assertions) && !cfg!(feature = "sabotage");
        if self.check_invariants && !engine_checks_itself {
            if let Err(violation) = self.engine.check_invariants() {
                self.violate(format!("engine {violation}"));
            }
        }
    }

    /// The swarm's liveness phase: no more injected crashes or spawn failures.
    pub fn faults_off(&mut self) {
        self.faults_on = false;
    }

    /// Asks the engine to shut down (the swarm's last phase).
    pub fn shutdown(&mut self) {
        self.deliver(Input::Shutdown);
        self.after_event();
    }
}

thread_local! {
    /// Set while the engine runs under `catch_unwind`: its panics become violations.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into its message. The engine panics on a broken invariant in
/// debug builds; the swarm reports that like any other violation, without the panic hook's
/// noise on stderr (panics elsewhere still reach the hook that was installed before).
pub(crate) fn quiet_panics<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}
