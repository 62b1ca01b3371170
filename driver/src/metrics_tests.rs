use super::*;
use ferry_engine::{GroupId, GroupStatus, Instant, ProcessId, ProcessStatus, Totals};

fn process(id: u64, state: ProcessState) -> ProcessStatus {
    ProcessStatus {
        id: ProcessId(id),
        state,
        sessions: 0,
        abandoned: 0,
        processed: 0,
        generation: 0,
        over_memory_limit: false,
        spawned_at: Instant::ZERO,
        ready_at: None,
        last_used: Instant::ZERO,
        oldest_request_started_at: None,
    }
}

fn pool(queued: usize, processes: Vec<ProcessStatus>) -> PoolStatus {
    PoolStatus {
        now: Instant::ZERO,
        max_pool_size: 6,
        process_count: processes.len(),
        queued,
        shutting_down: false,
        totals: Totals::default(),
        groups: vec![GroupStatus {
            id: GroupId(0),
            name: "app".into(),
            min_instances: 1,
            queue: queued,
            max_request_queue_size: 100,
            concurrency: 1,
            target_concurrency: 1,
            generation: 0,
            backoff_until: None,
            last_spawn_error: None,
            always_restart: false,
            restart: None,
            processes,
        }],
        recent_decisions: Vec::new(),
    }
}

/// The value of the sample line `name_and_labels`.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn counts_render_as_prometheus_text() {
    let mut metrics = Metrics::default();
    metrics.request_ended(200, Duration::from_millis(3));
    metrics.request_ended(204, Duration::from_millis(30));
    metrics.request_ended(503, Duration::from_secs(100));
    metrics.request_ended(400, Duration::ZERO);
    metrics.request_forwarded(Duration::from_micros(500));
    metrics.rejected(&RejectReason::QueueFull);
    metrics.rejected(&RejectReason::QueueFull);
    metrics.rejected(&RejectReason::ShuttingDown);
    metrics.failed("crashed");
    metrics.failed("no_response");
    metrics.failed("no_response");
    metrics.spawned("min_instances");
    metrics.killed("idle");
    let status = pool(
        2,
        vec![
            process(1, ProcessState::Ready),
            process(2, ProcessState::Ready),
            process(3, ProcessState::Spawning),
        ],
    );
    let text = metrics.render(&status, true);
    assert_eq!(sample(&text, "ferry_requests_total{code=\"2xx\"}"), 2.0);
    assert_eq!(sample(&text, "ferry_requests_total{code=\"4xx\"}"), 1.0);
    assert_eq!(sample(&text, "ferry_requests_total{code=\"5xx\"}"), 1.0);
    assert_eq!(sample(&text, "ferry_requests_total{code=\"1xx\"}"), 0.0);
    let duration = "ferry_request_duration_seconds";
    assert_eq!(
        sample(&text, &format!("{duration}_bucket{{le=\"0.005\"}}")),
        2.0
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket{{le=\"0.025\"}}")),
        2.0
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket{{le=\"0.05\"}}")),
        3.0
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket{{le=\"60\"}}")),
        3.0
    );
    assert_eq!(
        sample(&text, &format!("{duration}_bucket{{le=\"+Inf\"}}")),
        4.0
    );
    assert_eq!(sample(&text, &format!("{duration}_count")), 4.0);
    assert!((sample(&text, &format!("{duration}_sum")) - 100.033).abs() < 1e-9);
    assert_eq!(
        sample(
            &text,
            "ferry_request_queue_wait_seconds_bucket{le=\"0.001\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "ferry_rejected_requests_total{reason=\"queue_full\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "ferry_rejected_requests_total{reason=\"shutting_down\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "ferry_failed_requests_total{reason=\"crashed\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "ferry_failed_requests_total{reason=\"no_response\"}"),
        2.0
    );
    assert_eq!(
        sample(&text, "ferry_spawns_total{reason=\"min_instances\"}"),
        1.0
    );
    assert_eq!(sample(&text, "ferry_kills_total{reason=\"idle\"}"), 1.0);
    assert_eq!(sample(&text, "ferry_request_queue_length"), 2.0);
    assert_eq!(sample(&text, "ferry_processes{state=\"ready\"}"), 2.0);
    assert_eq!(sample(&text, "ferry_processes{state=\"spawning\"}"), 1.0);
    assert_eq!(sample(&text, "ferry_processes{state=\"draining\"}"), 0.0);
    assert_eq!(sample(&text, "ferry_ready"), 1.0);
    assert_eq!(sample(&metrics.render(&status, false), "ferry_ready"), 0.0);
}

#[test]
fn every_family_has_help_and_type_before_its_samples() {
    let text = Metrics::default().render(&pool(0, vec![]), true);
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.contains(*base))
            .unwrap_or(name);
        assert!(typed.contains(family), "{line}: no # TYPE before it");
    }
}
