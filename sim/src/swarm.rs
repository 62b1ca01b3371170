//! Swarm testing: random scenarios from one seed, every invariant checked after every event.
//!
//! In the spirit of TigerBeetle's VOPR: one seed draws the whole scenario (pool settings,
//! app behaviour, traffic and faults); a safety phase with faults is followed by a quiet
//! liveness phase without traffic or faults, after which nothing may be left waiting and the
//! pool must be back to its resting size; then a shutdown must complete. A failure is shrunk
//! (shorter, less traffic, fewer faults) while it still fails, and written out as a scenario
//! file that `ferry sim` replays.

use crate::dist::Dist;
use crate::duration::SimDuration;
use crate::model::AppState;
use crate::scenario::{
    AppModel, Fault, PoolSettings, ProcessPick, Scenario, SpawnFailure, SpawnFailures, Traffic,
};
use crate::sim::Simulation;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Requests a generated scenario aims at, at most: enough to exercise queues and scaling,
/// few enough that hundreds of scenarios run in seconds (in debug builds the engine checks
/// its invariants on every input, at a cost that grows with the queue).
const REQUESTS_PER_SCENARIO_MAX: f64 = 1_500.0;
/// Runs the shrinker may spend on one failure.
const SHRINK_RUNS_MAX: usize = 300;

/// Runs `count` random scenarios, seeds `seed`, `seed + 1`, …; returns the exit code. A
/// shrunk failure is written to the current directory.
pub fn run_swarm(count: u64, seed: u64, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run_swarm_in(count, seed, Path::new(""), out, err)
}

/// [`run_swarm`], writing a shrunk failure into `dir`.
pub fn run_swarm_in(
    count: u64,
    seed: u64,
    dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut requests = 0u64;
    let mut events = 0u64;
    for index in 0..count {
        let scenario_seed = seed.wrapping_add(index);
        let scenario = generate(scenario_seed);
        let sim = run_checked(&scenario, scenario.seed);
        requests += sim.counts.arrived;
        events += sim.events_total;
        let Some(violation) = sim.violation.clone() else {
            continue;
        };
        drop(sim);
        let _ = writeln!(
            out,
            "swarm: scenario {} of {count} (seed {scenario_seed}) broke: {violation}",
            index + 1
        );
        let _ = writeln!(out, "swarm: shrinking…");
        let (shrunk, shrunk_violation) = shrink(scenario, violation);
        let file = dir.join(format!("ferry-swarm-{scenario_seed}.toml"));
        let path = file.display();
        let text = format!(
            "# Found by `ferry sim --swarm 1 --seed {scenario_seed}`, then shrunk.\n# {}\n{}",
            shrunk_violation.replace('\n', " "),
            shrunk.to_toml()
        );
        match std::fs::write(&file, &text) {
            Ok(()) => {
                let _ = writeln!(
                    out,
                    "swarm: the shrunk scenario, written to {path}:\n\n{text}"
                );
                let _ = writeln!(out, "reproduce: ferry sim {path}");
            }
            Err(error) => {
                let _ = writeln!(err, "swarm: cannot write {path}: {error}");
                let _ = writeln!(out, "swarm: the shrunk scenario:\n\n{text}");
            }
        }
        let _ = writeln!(
            out,
            "reproduce the unshrunk one: ferry sim --swarm 1 --seed {scenario_seed}"
        );
        return 1;
    }
    let _ = writeln!(
        out,
        "swarm: {count} scenarios (seeds {seed}..{}) clean: {requests} requests, {events} events, invariants checked after each",
        seed.wrapping_add(count)
    );
    0
}

/// Runs a scenario under the swarm's checks: the safety phase with the engine's invariants
/// after every event, the quiet liveness phase, then a shutdown.
pub(crate) fn run_checked(scenario: &Scenario, seed: u64) -> Simulation<'_> {
    let mut sim = Simulation::new(scenario, seed, true);
    let end = scenario.duration.as_nanos();
    sim.run_until(end);
    if sim.violation.is_some() {
        return sim;
    }
    sim.faults_off();
    let spawns_before = sim.engine.totals().spawns;
    let window = quiet_phase_nanos(scenario);
    let mut deadline = end + window;
    loop {
        let ended_before = ended(&sim);
        sim.run_until(deadline);
        if sim.violation.is_some() {
            return sim;
        }
        let problem = unsettled(&sim, spawns_before, deadline - end);
        // A pool that still makes progress (a long queue draining through a small pool) is
        // given more time; one that makes none within a whole window is stuck.
        let progress = ended(&sim) > ended_before;
        match problem {
            None => break,
            Some(problem) if !progress || deadline - end >= QUIET_PHASE_NANOS_MAX => {
                sim.violate(format!("liveness: {problem}"));
                return sim;
            }
            Some(_) => deadline += window,
        }
    }
    sim.shutdown();
    let p = &scenario.pool;
    let shutdown_by = sim.now
        + p.shutdown_timeout.as_nanos()
        + p.kill_timeout.as_nanos()
        + SimDuration::from_secs(60).as_nanos();
    sim.run_until(shutdown_by);
    if sim.violation.is_none() {
        check_shut_down(&mut sim);
    }
    sim
}

/// However slowly the pool drains, it must settle within a virtual day.
const QUIET_PHASE_NANOS_MAX: u64 = 86_400 * 1_000_000_000;

fn ended(sim: &Simulation) -> u64 {
    let c = &sim.counts;
    c.served + c.rejected + c.failed + c.cancelled
}

/// Long enough for any backoff, spawn, start timeout, idle shutdown and exit to play out
/// once traffic and faults stop, with a margin for the tail of service times.
fn quiet_phase_nanos(scenario: &Scenario) -> u64 {
    let p = &scenario.pool;
    [
        p.backoff_max,
        p.start_timeout,
        p.kill_timeout,
        p.pool_idle_time,
        p.pool_idle_time,
        p.stable_uptime,
        SimDuration::from_secs(600),
    ]
    .iter()
    .map(|d| d.as_nanos())
    .sum::<u64>()
        + 4 * longest_nanos(&scenario.app.spawn_time)
        + 4 * longest_nanos(&scenario.app.shutdown_time)
}

/// A duration's longest draw, or for unbounded distributions a generous multiple of its mean.
fn longest_nanos(dist: &Dist) -> u64 {
    match *dist {
        Dist::Fixed(d) => d.as_nanos(),
        Dist::Uniform { max, .. } => max.as_nanos(),
        _ => (dist.mean_nanos() * 20.0) as u64,
    }
}

/// Whether a process of this app can start at all: every spawn outlasting `start_timeout`
/// means none ever becomes ready, faults or not.
fn app_can_start(scenario: &Scenario) -> bool {
    longest_nanos(&scenario.app.spawn_time) < scenario.pool.start_timeout.as_nanos()
}

/// What is wrong after the quiet phase, if anything. Nothing may wait or be in flight. An app
/// that can start rests at `min_instances` ready processes (or more, if idle processes are
/// never shut down); one that cannot must have backed off: a handful of spawns per
/// `backoff_max`, not a spawn loop.
fn unsettled(sim: &Simulation, spawns_before: u64, quiet_nanos: u64) -> Option<String> {
    let open = sim.requests.open();
    if open > 0 {
        let queued = sim.requests.queued();
        return Some(format!(
            "{open} requests still open ({queued} queued) after the quiet phase"
        ));
    }
    let pool = &sim.scenario.pool;
    let live = sim.processes.len();
    if !app_can_start(sim.scenario) {
        let spawns = sim.engine.totals().spawns - spawns_before;
        let rounds = quiet_nanos / pool.backoff_max.as_nanos().max(1) + 20;
        let bound = rounds * pool.min_instances.max(1) as u64;
        return (spawns > bound).then(|| {
            format!("an app that cannot start was spawned {spawns} times in the quiet phase (more than {bound}): no backoff")
        });
    }
    let unready = sim
        .processes
        .values()
        .filter(|p| p.state != AppState::Ready || p.kill.is_some())
        .count();
    if unready > 0 {
        return Some(format!(
            "{unready} of {live} processes are still starting or stopping after the quiet phase"
        ));
    }
    let settled = if pool.pool_idle_time.as_nanos() == 0 {
        live >= pool.min_instances
    } else {
        live == pool.min_instances
    };
    (!settled).then(|| {
        format!(
            "{live} processes after the quiet phase, min_instances {} (pool_idle_time {})",
            pool.min_instances, pool.pool_idle_time
        )
    })
}

fn check_shut_down(sim: &mut Simulation) {
    if sim.shutdown_completes != 1 || !sim.processes.is_empty() || sim.requests.open() > 0 {
        sim.violate(format!(
            "liveness: shutdown did not complete in time ({} processes, {} requests left, ShutdownComplete sent {} times)",
            sim.processes.len(),
            sim.requests.open(),
            sim.shutdown_completes
        ));
    }
}

/// Draws a whole scenario from `seed`.
pub fn generate(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(9);
    let rng = &mut rng;
    let duration = secs(*[5, 10, 20, 30, 60, 120].choose(rng).expect("not empty"));
    let mut pool = generate_pool(rng);
    let app = generate_app(rng, duration);
    // Mostly apps that start in time; now and then one whose start times out, sometimes
    // always (it can never serve).
    let spawn_max = longest_nanos(&app.spawn_time);
    pool.start_timeout = if rng.random_bool(0.1) {
        SimDuration(rng.random_range(spawn_max / 2..=spawn_max * 3 / 2))
    } else {
        SimDuration(spawn_max + rng.random_range(1..=30) * 1_000_000_000)
    };
    let mut traffic: Vec<Traffic> = (0..rng.random_range(1..=3))
        .map(|_| generate_traffic(rng, duration))
        .collect();
    let estimate = estimated_requests(&traffic, &app, duration);
    if estimate > REQUESTS_PER_SCENARIO_MAX {
        scale_traffic(&mut traffic, REQUESTS_PER_SCENARIO_MAX / estimate);
    }
    let fault = (0..rng.random_range(0..=4))
        .map(|_| generate_fault(rng, duration))
        .collect();
    Scenario {
        name: format!("swarm-{seed}"),
        description: None,
        seed,
        duration,
        swarm_checks: true,
        pool,
        app,
        traffic,
        fault,
        expect: Vec::new(),
        status: Vec::new(),
    }
}

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}

fn millis(ms: u64) -> SimDuration {
    SimDuration::from_millis(ms)
}

fn generate_pool(rng: &mut ChaCha8Rng) -> PoolSettings {
    let max_pool_size = rng.random_range(1..=8);
    let backoff_initial = millis(rng.random_range(100..=2_000));
    PoolSettings {
        max_pool_size,
        min_instances: rng.random_range(0..=max_pool_size.min(3)),
        pool_idle_time: *[secs(0), secs(1), secs(5), secs(30), secs(300)]
            .choose(rng)
            .expect("not empty"),
        max_requests: if rng.random_bool(0.3) {
            rng.random_range(1..=50)
        } else {
            0
        },
        max_request_queue_size: if rng.random_bool(0.1) {
            0
        } else {
            rng.random_range(1..=100)
        },
        concurrency: *[1, 1, 1, 0, 2, 4, 8].choose(rng).expect("not empty"),
        max_spawn_concurrency: rng.random_range(1..=4),
        start_timeout: millis(rng.random_range(300..=30_000)), // set again by `generate_app`
        kill_timeout: millis(rng.random_range(100..=10_000)),
        shutdown_timeout: millis(rng.random_range(1_000..=30_000)),
        backoff_initial,
        backoff_max: SimDuration(backoff_initial.as_nanos() * rng.random_range(1..=30)),
        stable_uptime: millis(rng.random_range(1_000..=20_000)),
        crash_respawn_interval: millis(*[0, 100, 1_000].choose(rng).expect("not empty")),
    }
}

fn generate_app(rng: &mut ChaCha8Rng, duration: SimDuration) -> AppModel {
    let spawn_ms = rng.random_range(10..=2_000);
    let spawn_time = if rng.random_bool(0.5) {
        Dist::Fixed(millis(spawn_ms))
    } else {
        Dist::Uniform {
            min: millis(spawn_ms / 2),
            max: millis(spawn_ms),
        }
    };
    let mean_ms = rng.random_range(1..=200);
    let service_time = match rng.random_range(0..4) {
        0 => Dist::Fixed(millis(mean_ms)),
        1 => Dist::Uniform {
            min: millis(mean_ms / 2),
            max: millis(mean_ms * 3 / 2),
        },
        2 => Dist::Exponential {
            mean: millis(mean_ms),
        },
        _ => Dist::LogNormal {
            median: millis(mean_ms),
            p99: millis(mean_ms * rng.random_range(2..=10)),
        },
    };
    let fail_spawns = rng.random_bool(0.25).then(|| {
        let from = rng.random_range(0..duration.as_nanos());
        let until = rng.random_range(from..=duration.as_nanos());
        SpawnFailures {
            from: SimDuration(from),
            until: SimDuration(until),
            how: if rng.random_bool(0.5) {
                SpawnFailure::Exit
            } else {
                SpawnFailure::Exec
            },
        }
    });
    AppModel {
        spawn_time,
        service_time,
        shutdown_time: Dist::Fixed(millis(
            *[0, 10, 100, 1_000, 20_000].choose(rng).expect("not empty"),
        )),
        crash_every: if rng.random_bool(0.4) {
            rng.random_range(5..=500)
        } else {
            0
        },
        fail_spawns,
        spawn_failure_probability: if rng.random_bool(0.3) {
            rng.random_range(0.0..0.5)
        } else {
            0.0
        },
    }
}

fn generate_traffic(rng: &mut ChaCha8Rng, duration: SimDuration) -> Traffic {
    let start = SimDuration(rng.random_range(0..duration.as_nanos()));
    let length = SimDuration(rng.random_range(1..=duration.as_nanos() - start.as_nanos()));
    let open = rng.random_bool(0.5);
    Traffic {
        start,
        duration: Some(length),
        rate: open.then(|| f64::from(rng.random_range(1u32..=200))),
        ramp_to: (open && rng.random_bool(0.3)).then(|| f64::from(rng.random_range(0u32..=200))),
        clients: (!open).then(|| rng.random_range(1..=40)),
        think_time: if rng.random_bool(0.5) {
            Dist::Fixed(SimDuration::ZERO)
        } else {
            Dist::Exponential {
                mean: millis(rng.random_range(1..=500)),
            }
        },
        rtt: SimDuration(rng.random_range(100_000..=50_000_000)),
        disconnect_after: rng
            .random_bool(0.2)
            .then(|| millis(rng.random_range(10..=5_000))),
    }
}

fn generate_fault(rng: &mut ChaCha8Rng, duration: SimDuration) -> Fault {
    let at = SimDuration(rng.random_range(0..=duration.as_nanos()));
    let pick = if rng.random_bool(0.5) {
        ProcessPick::Random
    } else {
        ProcessPick::Nth(rng.random_range(1..=4))
    };
    let (kill, detach, restart) = match rng.random_range(0..4) {
        0 | 1 => (Some(pick), None, false),
        2 => (None, Some(pick), false),
        _ => (None, None, true),
    };
    Fault {
        at,
        kill,
        detach,
        restart,
    }
}

/// About how many requests the traffic sends: open loop by its mean rate, closed loop by
/// each client's cycle of round trip, think time and service.
fn estimated_requests(traffic: &[Traffic], app: &AppModel, duration: SimDuration) -> f64 {
    traffic
        .iter()
        .map(|t| {
            let seconds = t.end(duration).as_secs_f64() - t.start.as_secs_f64();
            match (t.rate, t.clients) {
                (Some(rate), _) => (rate + t.ramp_to.unwrap_or(rate)) / 2.0 * seconds,
                (None, Some(clients)) => {
                    let cycle = t.rtt.as_nanos() as f64
                        + t.think_time.mean_nanos()
                        + app.service_time.mean_nanos();
                    f64::from(clients) * seconds * 1e9 / cycle.max(1e6)
                }
                (None, None) => 0.0,
            }
        })
        .sum()
}

fn scale_traffic(traffic: &mut [Traffic], factor: f64) {
    for t in traffic {
        if let Some(rate) = &mut t.rate {
            *rate = (*rate * factor).ceil();
        }
        if let Some(ramp_to) = &mut t.ramp_to {
            *ramp_to = (*ramp_to * factor).ceil();
        }
        if let Some(clients) = &mut t.clients {
            *clients = ((f64::from(*clients) * factor).ceil() as u32).max(1);
        }
    }
}

/// Smaller variants of a failing scenario, most reducing first.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut push = |f: &dyn Fn(&mut Scenario)| {
        let mut candidate = s.clone();
        f(&mut candidate);
        if candidate != *s {
            out.push(candidate);
        }
    };
    push(&|c| {
        c.duration = SimDuration((c.duration.as_nanos() / 2).max(1_000_000));
        let end = c.duration;
        c.traffic.retain(|t| t.start < end);
        c.fault.retain(|f| f.at <= end);
        if let Some(w) = &mut c.app.fail_spawns {
            w.from = w.from.min(end);
            w.until = w.until.min(end);
        }
    });
    for i in 0..s.traffic.len() {
        push(&|c| {
            c.traffic.remove(i);
        });
    }
    for i in 0..s.fault.len() {
        push(&|c| {
            c.fault.remove(i);
        });
    }
    for i in 0..s.traffic.len() {
        push(&|c| scale_traffic(std::slice::from_mut(&mut c.traffic[i]), 0.5));
        push(&|c| {
            let t = &mut c.traffic[i];
            if let Some(d) = t.duration {
                t.duration = Some(SimDuration((d.as_nanos() / 2).max(1)));
            }
        });
        push(&|c| c.traffic[i].disconnect_after = None);
        push(&|c| c.traffic[i].ramp_to = None);
        push(&|c| c.traffic[i].think_time = Dist::Fixed(SimDuration::ZERO));
    }
    for unit_nanos in [1_000_000_000, 1_000_000] {
        if let Some(rounded) = rounded_times(s, unit_nanos) {
            push(&|c| *c = rounded.clone());
        }
    }
    push(&|c| c.app.crash_every = 0);
    push(&|c| c.app.fail_spawns = None);
    push(&|c| c.app.spawn_failure_probability = 0.0);
    push(&|c| c.pool.max_requests = 0);
    push(&|c| c.pool.max_pool_size = (c.pool.max_pool_size / 2).max(c.pool.min_instances).max(1));
    push(&|c| c.pool.min_instances /= 2);
    out
}

/// The scenario with every duration rounded to `unit_nanos` (none rounded to zero), so that a
/// shrunk scenario reads "38.9s" rather than "38.888039197s".
fn rounded_times(scenario: &Scenario, unit_nanos: u64) -> Option<Scenario> {
    fn round(value: &mut toml::Value, unit_nanos: u64) {
        match value {
            toml::Value::String(text) => {
                if let Ok(duration) = crate::duration::parse_duration(text) {
                    let nanos = duration.as_nanos();
                    let rounded = (nanos + unit_nanos / 2) / unit_nanos * unit_nanos;
                    if rounded > 0 || nanos == 0 {
                        *text = SimDuration(rounded).to_string();
                    }
                }
            }
            toml::Value::Array(items) => items.iter_mut().for_each(|v| round(v, unit_nanos)),
            toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| round(v, unit_nanos)),
            _ => {}
        }
    }
    let mut value = toml::Value::try_from(scenario).ok()?;
    round(&mut value, unit_nanos);
    value.try_into().ok()
}

fn shrink(scenario: Scenario, violation: String) -> (Scenario, String) {
    shrink_with(scenario, violation, |candidate| {
        run_checked(candidate, candidate.seed).violation.clone()
    })
}

/// Shrinks while `fails` still finds a violation; returns the smallest failing scenario.
pub fn shrink_with(
    mut scenario: Scenario,
    mut violation: String,
    fails: impl Fn(&Scenario) -> Option<String>,
) -> (Scenario, String) {
    let mut runs = 0;
    'improve: while runs < SHRINK_RUNS_MAX {
        for candidate in candidates(&scenario) {
            // Only what `ferry sim` accepts back is worth writing out.
            if Scenario::parse(&candidate.to_toml(), "shrunk").is_err() {
                continue;
            }
            runs += 1;
            if let Some(found) = fails(&candidate) {
                scenario = candidate;
                violation = found;
                continue 'improve;
            }
            if runs >= SHRINK_RUNS_MAX {
                break 'improve;
            }
        }
        break;
    }
    (scenario, violation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_keeps_only_what_the_failure_needs() {
        let is_kill = |f: &Fault| f.kill.is_some() || f.detach.is_some() || f.restart;
        // The first half must hold a kill and traffic, so the shrinker can cut the second.
        let seed = (0..200)
            .find(|s| {
                let g = generate(*s);
                let half = SimDuration(g.duration.as_nanos() / 2);
                g.fault.len() >= 2
                    && g.traffic.len() >= 2
                    && g.duration.as_nanos() >= 20_000_000_000
                    && g.fault.iter().any(|f| is_kill(f) && f.at < half)
                    && g.traffic.iter().any(|t| t.start < half)
            })
            .expect("some seed has two faults and two traffic stretches, kill and traffic early");
        let scenario = generate(seed);
        // A pretend failure: any kill fault in a scenario with traffic.
        let fails = |s: &Scenario| {
            let kill = s.fault.iter().any(is_kill);
            (kill && !s.traffic.is_empty()).then(|| "pretend".to_string())
        };
        let (shrunk, violation) = shrink_with(scenario.clone(), "pretend".into(), fails);
        assert_eq!(violation, "pretend");
        assert_eq!(shrunk.fault.len(), 1, "{}", shrunk.to_toml());
        assert_eq!(shrunk.traffic.len(), 1, "{}", shrunk.to_toml());
        assert!(
            shrunk.duration < scenario.duration,
            "the duration was not cut:\n{}",
            shrunk.to_toml()
        );
        assert_eq!(shrunk.app.crash_every, 0);
        assert!(shrunk.app.fail_spawns.is_none());
    }

    #[test]
    fn generated_scenarios_are_valid_and_round_trip() {
        for seed in 0..40 {
            let scenario = generate(seed);
            let text = scenario.to_toml();
            let parsed =
                Scenario::parse(&text, "generated").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(parsed, scenario, "{text}");
        }
    }
}
