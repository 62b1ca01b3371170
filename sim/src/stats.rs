//! What the run measures as it goes: latency histograms, the pool's size over time and a
//! timeline for the report and the SVG.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in nanoseconds up to a day at three significant figures: a few
/// hundred kilobytes per histogram, whatever the number of requests.
const HISTOGRAM_NANOS_MAX: u64 = 86_400 * 1_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_NANOS_MAX, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds for JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    #[serde(skip)]
    pub p50_nanos: Option<u64>,
    #[serde(skip)]
    pub p99_nanos: Option<u64>,
    #[serde(skip)]
    pub max_nanos: Option<u64>,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let count = histogram.len();
        let pick = |value: u64| (count > 0).then_some(value);
        let p50 = pick(histogram.value_at_quantile(0.5));
        let p99 = pick(histogram.value_at_quantile(0.99));
        let max = pick(histogram.max());
        let ms = |nanos: Option<u64>| nanos.map(|n| (n as f64 / 1e6 * 1e3).round() / 1e3);
        Percentiles {
            count,
            p50_ms: ms(p50),
            p99_ms: ms(p99),
            max_ms: ms(max),
            p50_nanos: p50,
            p99_nanos: p99,
            max_nanos: max,
        }
    }
}

/// One slice of virtual time: the most of each series within it, and the busy sessions'
/// integral over it (for their mean, which shows load better than a peak).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub processes: u32,
    pub busy: u32,
    pub queue: u32,
    /// Busy sessions × nanoseconds within the slot.
    pub busy_area: u128,
}

/// Series over virtual time at a fixed resolution, so memory does not grow with the run.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub slot_nanos: u64,
    pub slots: Vec<Slot>,
    /// The last slot written; later ones start from `last`.
    filled: usize,
    last: Slot,
    last_at_nanos: u64,
}

pub const TIMELINE_SLOTS: usize = 1000;

impl Timeline {
    pub fn new(duration_nanos: u64) -> Timeline {
        Timeline {
            slot_nanos: duration_nanos.div_ceil(TIMELINE_SLOTS as u64).max(1),
            slots: vec![Slot::default(); TIMELINE_SLOTS],
            filled: 0,
            last: Slot::default(),
            last_at_nanos: 0,
        }
    }

    fn index(&self, nanos: u64) -> usize {
        ((nanos / self.slot_nanos) as usize).min(TIMELINE_SLOTS - 1)
    }

    /// The values after an event at `now_nanos`; they hold until the next one.
    pub fn record(&mut self, now_nanos: u64, value: Slot) {
        self.accumulate_busy(now_nanos);
        let index = self.index(now_nanos);
        self.fill_to(index);
        let slot = &mut self.slots[index];
        slot.processes = slot.processes.max(value.processes);
        slot.busy = slot.busy.max(value.busy);
        slot.queue = slot.queue.max(value.queue);
        self.last = Slot {
            busy_area: 0,
            ..value
        };
    }

    /// Adds the busy sessions held since the last event, slot by slot, up to `now_nanos`.
    fn accumulate_busy(&mut self, now_nanos: u64) {
        let busy = u128::from(self.last.busy);
        let mut at = self.last_at_nanos;
        self.last_at_nanos = self.last_at_nanos.max(now_nanos);
        if busy == 0 {
            return;
        }
        let end = now_nanos.min(self.slot_nanos * TIMELINE_SLOTS as u64);
        while at < end {
            let index = self.index(at);
            let until = (self.slot_nanos * (index as u64 + 1)).min(end);
            self.slots[index].busy_area += busy * u128::from(until - at);
            at = until;
        }
    }

    /// Closes the timeline at the end of the run.
    pub fn finish(&mut self, end_nanos: u64) {
        self.accumulate_busy(end_nanos);
        self.fill_to(self.index(end_nanos));
    }

    /// Slots without an event hold the value carried in from before.
    fn fill_to(&mut self, index: usize) {
        while self.filled < index {
            self.filled += 1;
            self.slots[self.filled] = Slot {
                busy_area: self.slots[self.filled].busy_area,
                ..self.last
            };
        }
    }

    /// Mean busy sessions over the slot.
    pub fn busy_mean(&self, slot: &Slot) -> f64 {
        slot.busy_area as f64 / self.slot_nanos as f64
    }

    /// The series as `columns` characters, each the most in its slots: a digit when the
    /// series stays at 9 or below, else one of eight block heights scaled to the peak.
    pub fn sparkline(&self, columns: usize, pick: impl Fn(&Slot) -> f64) -> (String, f64) {
        let values: Vec<f64> = self.slots.iter().map(pick).collect();
        let peak = values.iter().copied().fold(0.0, f64::max);
        let mut line = String::with_capacity(columns * 3);
        for column in 0..columns {
            let from = column * TIMELINE_SLOTS / columns;
            let to = ((column + 1) * TIMELINE_SLOTS / columns).max(from + 1);
            let most = values[from..to].iter().copied().fold(0.0, f64::max);
            line.push(glyph(most, peak));
        }
        (line, peak)
    }
}

fn glyph(value: f64, peak: f64) -> char {
    const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if peak < 9.5 {
        return char::from_digit(value.round() as u32, 10).unwrap_or('?');
    }
    if value <= 0.0 {
        return BLOCKS[0];
    }
    let level = (value * 8.0 / peak).ceil().clamp(1.0, 8.0);
    BLOCKS[level as usize]
}

/// The pool's size weighted by time: its minimum, maximum and mean.
#[derive(Clone, Debug, Default)]
pub struct PoolSize {
    since_nanos: u64,
    current: u64,
    area: u128,
    pub min: u64,
    pub max: u64,
}

impl PoolSize {
    pub fn new(initial: u64) -> PoolSize {
        PoolSize {
            current: initial,
            min: initial,
            max: initial,
            ..PoolSize::default()
        }
    }

    pub fn record(&mut self, now_nanos: u64, count: u64) {
        if count == self.current {
            return;
        }
        self.area += u128::from(self.current) * u128::from(now_nanos - self.since_nanos);
        self.since_nanos = now_nanos;
        self.current = count;
        self.min = self.min.min(count);
        self.max = self.max.max(count);
    }

    /// Process-nanoseconds from the start to `end_nanos`.
    fn area_until(&self, end_nanos: u64) -> u128 {
        self.area
            + u128::from(self.current) * u128::from(end_nanos.saturating_sub(self.since_nanos))
    }

    pub fn mean(&self, end_nanos: u64) -> f64 {
        if end_nanos == 0 {
            return self.current as f64;
        }
        self.area_until(end_nanos) as f64 / end_nanos as f64
    }

    /// The pool's cost from the start to `end_nanos`: live processes times time.
    pub fn process_seconds(&self, end_nanos: u64) -> f64 {
        self.area_until(end_nanos) as f64 / 1e9
    }
}
