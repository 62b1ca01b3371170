//! How many events the engine handles per second, single-threaded.
//!
//! An event is one `Engine::handle` call plus draining the commands it gives. The load is
//! steady: every process is ready, half of them serve a request, and each step one request
//! finishes and a new one arrives in the same group, so routing picks among the idle half.
//!
//! Run with `cargo bench -p ferry-engine` (release). Not run in CI.

use ferry_engine::{Command, Config, Engine, GroupConfig, GroupId, Input, Instant, PoolConfig};
use ferry_engine::{ProcessId, RequestId};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant as WallClock;

struct Scenario {
    name: &'static str,
    groups: u32,
    processes_per_group: usize,
}

/// A pool at steady load: every process ready, `busy` requests in flight per group.
struct Load {
    engine: Engine,
    now_ns: u64,
    next_request: u64,
    in_flight: Vec<VecDeque<RequestId>>,
    commands_total: u64,
}

impl Load {
    fn new(scenario: &Scenario) -> Load {
        let group = GroupConfig {
            min_instances: scenario.processes_per_group,
            concurrency: 1,
            max_request_queue_size: 100,
            ..GroupConfig::default()
        };
        let config = Config {
            pool: PoolConfig {
                max_pool_size: scenario.groups as usize * scenario.processes_per_group,
                ..PoolConfig::default()
            },
            groups: vec![group; scenario.groups as usize],
        };
        let mut engine = Engine::new(config, Instant::ZERO).unwrap();
        let mut spawned: Vec<ProcessId> = Vec::new();
        while let Some(command) = engine.poll_command() {
            if let Command::Spawn { process, .. } = command {
                spawned.push(process);
            }
        }
        let mut load = Load {
            engine,
            now_ns: 0,
            next_request: 0,
            in_flight: vec![VecDeque::new(); scenario.groups as usize],
            commands_total: 0,
        };
        for process in spawned {
            load.event(Input::ProcessReady { process });
        }
        let busy = scenario.processes_per_group / 2;
        for group in 0..scenario.groups {
            for _ in 0..busy {
                load.arrive(group);
            }
        }
        assert_eq!(
            load.engine.busy_sessions(),
            busy * scenario.groups as usize,
            "every request found a process at once"
        );
        load
    }

    fn event(&mut self, input: Input) {
        self.now_ns += 1_000;
        self.engine.handle(Instant::from_nanos(self.now_ns), input);
        while let Some(command) = self.engine.poll_command() {
            black_box(&command);
            self.commands_total += 1;
        }
    }

    fn arrive(&mut self, group: u32) {
        let request = RequestId(self.next_request);
        self.next_request += 1;
        self.in_flight[group as usize].push_back(request);
        self.event(Input::RequestArrived {
            group: GroupId(group),
            request,
        });
    }

    /// One request finishes and another arrives, in each group in turn: two events.
    fn step(&mut self, step: u64) {
        let group = (step % self.in_flight.len() as u64) as u32;
        let request = self.in_flight[group as usize].pop_front().unwrap();
        self.event(Input::RequestFinished { request });
        self.arrive(group);
    }
}

/// Nanoseconds per event over `steps` steps (two events each).
fn measure(load: &mut Load, first_step: u64, steps: u64) -> f64 {
    let started = WallClock::now();
    for step in first_step..first_step + steps {
        load.step(step);
    }
    started.elapsed().as_nanos() as f64 / (2 * steps) as f64
}

fn main() {
    let scenarios = [
        Scenario {
            name: "1 group x 6 processes",
            groups: 1,
            processes_per_group: 6,
        },
        Scenario {
            name: "50 groups x 20 processes",
            groups: 50,
            processes_per_group: 20,
        },
        Scenario {
            name: "1 group x 100 processes",
            groups: 1,
            processes_per_group: 100,
        },
        Scenario {
            name: "1 group x 1000 processes",
            groups: 1,
            processes_per_group: 1000,
        },
    ];
    // `cargo bench -p ferry-engine -- <name filter> <steps>` narrows a run, for profiling.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let filter = args.first().cloned().unwrap_or_default();
    let steps: u64 = args.get(1).map_or(1_000_000, |s| s.parse().unwrap());
    let runs = 5;
    println!("steady load, half the processes busy; an event = handle() + draining its commands");
    for scenario in scenarios.iter().filter(|s| s.name.contains(&filter)) {
        let mut load = Load::new(scenario);
        measure(&mut load, 0, steps / 10); // warm-up
        let mut ns_per_event: Vec<f64> = (0..runs)
            .map(|run| measure(&mut load, (run + 1) * steps, steps))
            .collect();
        ns_per_event.sort_by(f64::total_cmp);
        let median = ns_per_event[ns_per_event.len() / 2];
        let best = ns_per_event[0];
        println!(
            "{:<26} median {:>6.1} ns/event = {:>5.2} M events/s (best {:.1} ns = {:.2} M/s; {} runs of {} events)",
            scenario.name,
            median,
            1e3 / median,
            best,
            1e3 / best,
            runs,
            2 * steps,
        );
        let totals = load.engine.totals();
        assert_eq!(
            totals.rejected + totals.failed + totals.spawns - totals.spawns,
            0
        );
        assert!(load.commands_total > 0);
    }
}
