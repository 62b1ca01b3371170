//! The swarm's scenarios: one seed draws the whole of one (pool settings, app behaviour,
//! traffic and faults), scaled to a size that hundreds of runs fit in seconds.

use crate::dist::Dist;
use crate::duration::SimDuration;
use crate::scenario::{
    AppModel, Fault, PoolSettings, ProcessPick, Scenario, SpawnFailure, SpawnFailures, Traffic,
};
use crate::swarm::longest_nanos;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Requests a generated scenario aims at, at most: enough to exercise queues and scaling,
/// few enough that hundreds of scenarios run in seconds (in debug builds the engine checks
/// its invariants on every input, at a cost that grows with the queue).
const REQUESTS_PER_SCENARIO_MAX: f64 = 1_500.0;
/// Draws a whole scenario from `seed`.
pub fn generate(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(9);
    let rng = &mut rng;
    let duration = secs(*[5, 10, 20, 30, 60, 120].choose(rng).expect("not empty"));
    let mut pool = generate_pool(rng);
    pool.target_concurrency = target_for(pool.concurrency);
    let mut app = generate_app(rng, duration);
    // Mostly apps that start in time; now and then one whose start times out, sometimes
    // always (it can never serve).
    let spawn_max = longest_nanos(&app.spawn_time);
    pool.start_timeout = if rng.random_bool(0.1) {
        SimDuration(rng.random_range(spawn_max / 2..=spawn_max * 3 / 2))
    } else {
        SimDuration(spawn_max + rng.random_range(1..=30) * 1_000_000_000)
    };
    // Hanging processes only where max_request_time ends their requests: without it a hung
    // process holds its requests until their clients leave, as Passenger's does.
    if rng.random_bool(0.3) {
        pool.max_request_time = millis(rng.random_range(200..=30_000));
        if rng.random_bool(0.5) {
            app.hang_probability = rng.random_range(0.001..0.05);
        }
    }
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
        replay: None,
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
        // Set by `generate` from the concurrency, without a draw of its own (so every seed
        // keeps the scenario it had).
        target_concurrency: 1,
        max_request_time: SimDuration::ZERO, // set by `generate`, with the app's hangs
        max_request_queue_time: if rng.random_bool(0.2) {
            millis(rng.random_range(100..=10_000))
        } else {
            SimDuration::ZERO
        },
    }
}

/// A soft scaling target below the hard cap where the cap allows (half of it), so the swarm
/// scales processes that take several sessions at once as well as single-session ones.
fn target_for(concurrency: u32) -> u32 {
    (concurrency / 2).max(1)
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
        // Processes killed young: a crash storm.
        die_after_ready: rng.random_bool(0.15).then(|| Dist::Uniform {
            min: millis(1),
            max: millis(rng.random_range(2..=3_000)),
        }),
        hang_probability: 0.0, // set by `generate`, where max_request_time can end hangs
        // The measured defaults, without a draw: the seeded streams stay as they were.
        spawn_contention: crate::scenario::SPAWN_CONTENTION_DEFAULT,
        request_overhead: crate::scenario::REQUEST_OVERHEAD_DEFAULT,
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
        retry_after_503: crate::scenario::default_retry_after_503(),
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

pub(crate) fn scale_traffic(traffic: &mut [Traffic], factor: f64) {
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
