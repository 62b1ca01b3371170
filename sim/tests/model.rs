//! The measured parts of the app and client model: a client's cycle after a 503, spawns that
//! slow each other down, the per-request overhead, and the per-second time series.

use ferry_sim::{run, Scenario};

fn report(toml: &str) -> ferry_sim::Report {
    let scenario = Scenario::parse(toml, "model.toml").expect("a valid scenario");
    run(&scenario, scenario.seed, None)
}

/// One process serving 100 ms requests, a queue of one, twelve closed-loop clients for 10 s:
/// one client in the process, one queued, ten answered 503 and resending.
fn overloaded(retry: &str) -> String {
    format!(
        r#"
name = "overloaded"
duration = "12s"
[pool]
max_pool_size = 1
min_instances = 1
max_request_queue_size = 1
[app]
spawn_time = "100ms"
service_time = "100ms"
[[traffic]]
start = "1s"
duration = "10s"
clients = 12
{retry}
"#
    )
}

#[test]
fn a_client_answered_503_resends_after_the_measured_cycle() {
    // Ten clients for 10 s, one resend every 6–8 ms each: about 12,500–16,700 503s.
    let rejected = report(&overloaded("")).requests.rejected;
    assert!((12_000..=17_000).contains(&rejected), "{rejected} 503s");
    // The old model (resend 1 ms after, as a served client would) predicts about seven times
    // as many: the over-prediction the measured cycle removes.
    let old = report(&overloaded(r#"retry_after_503 = "1ms""#))
        .requests
        .rejected;
    assert!(old > 5 * rejected, "{old} against {rejected}");
}

fn six_at_once(contention: &str) -> ferry_sim::Report {
    report(&format!(
        r#"
name = "six-at-once"
duration = "2s"
[pool]
max_pool_size = 6
min_instances = 6
[app]
spawn_time = "220ms"
{contention}
"#
    ))
}

fn ready_after_ms(report: &ferry_sim::Report) -> Vec<f64> {
    report
        .processes
        .iter()
        .map(|p| p.ready_at_s.expect("every process became ready") * 1e3)
        .collect()
}

#[test]
fn spawns_started_together_slow_each_other_down() {
    // The measured default: 220 ms alone, about 2.35 times that with five others starting.
    let together = ready_after_ms(&six_at_once(""));
    assert_eq!(together.len(), 6);
    let last = together.iter().copied().fold(0.0, f64::max);
    assert!((476.0..=565.0).contains(&last), "{together:?}");
    assert!((219.0..=221.0).contains(&together[0]), "{together:?}");
    // Without contention they all start in 220 ms.
    let alone = ready_after_ms(&six_at_once("spawn_contention = 0.0"));
    assert!(
        alone.iter().all(|ms| (219.0..=221.0).contains(ms)),
        "{alone:?}"
    );
}

#[test]
fn every_request_costs_its_overhead_on_top_of_its_service_time() {
    let toml = |overhead: &str| {
        format!(
            r#"
name = "overhead"
duration = "5s"
[app]
spawn_time = "10ms"
service_time = "10ms"
{overhead}
[[traffic]]
start = "1s"
rate = 5
"#
        )
    };
    let served = |r: ferry_sim::Report| r.latency.served.p50_nanos.unwrap() as f64 / 1e6;
    let default = served(report(&toml("")));
    assert!((10.6..=10.7).contains(&default), "{default} ms");
    let none = served(report(&toml(r#"request_overhead = "0s""#)));
    assert!((9.99..=10.01).contains(&none), "{none} ms");
}

#[test]
fn the_time_series_has_one_sample_per_second_adding_up_to_the_totals() {
    let report = report(&overloaded(""));
    let series = &report.time_series;
    assert_eq!(series.interval_s, 1);
    assert_eq!(series.ready.len(), 13, "0 s to 12 s");
    assert_eq!(series.served.iter().sum::<u64>(), report.requests.served);
    assert_eq!(
        series.rejected.iter().sum::<u64>(),
        report.requests.rejected
    );
    // Spawning at 0 s, ready from 1 s; one busy and one queued while the clients send, the
    // other ten answered 503 every 6–8 ms.
    assert_eq!((series.spawning[0], series.ready[0]), (1, 0));
    assert_eq!(series.ready[5], 1);
    assert_eq!((series.busy[5], series.queue[5]), (1, 1));
    assert!(
        (1_250..=1_670).contains(&series.rejected[5]),
        "{:?}",
        series.rejected
    );
    assert_eq!(series.busy[12], 0);
}
