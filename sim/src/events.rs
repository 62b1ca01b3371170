//! The event queue: virtual time advances from one event to the next.

use ferry_engine::{ProcessId, RequestId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something due at a virtual instant. Events may be stale by the time they fire (the
/// request was cancelled, the process already exited): handlers check before acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The next Poisson arrival of an open-loop traffic stretch.
    OpenArrival { source: u32 },
    /// The `index`-th request of the replayed log arrives.
    ReplayArrival { index: u32 },
    /// A closed-loop client sends its next request.
    ClientSend { source: u32, client: u32 },
    /// The app finishes a request.
    ServiceDone {
        request: RequestId,
        process: ProcessId,
    },
    /// The app crashes while serving a request (`crash_every`).
    CrashWhileServing { process: ProcessId },
    /// A client gives up waiting (`disconnect_after`).
    Disconnect { request: RequestId },
    /// A replayed client leaves, if its request still waits in the queue.
    LeaveQueue { request: RequestId },
    /// A spawned process starts accepting requests.
    SpawnReady { process: ProcessId },
    /// A spawned process exits before it was ready (spawn failure injection).
    SpawnExit { process: ProcessId },
    /// The spawn fails outright, no process left (exec failure injection).
    SpawnExecFailed { process: ProcessId },
    /// A killed process exits.
    Exit { process: ProcessId, forced: bool },
    /// A `[[fault]]` of the scenario.
    Fault { index: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub at_nanos: u64,
    /// Breaks ties in the order events were scheduled, so equal times replay identically.
    seq: u64,
    pub kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at_nanos, self.seq) == (other.at_nanos, other.seq)
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_nanos, other.seq).cmp(&(self.at_nanos, self.seq))
    }
}

#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
}

impl EventQueue {
    pub fn schedule(&mut self, at_nanos: u64, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Event {
            at_nanos,
            seq,
            kind,
        });
    }

    pub fn next_time(&self) -> Option<u64> {
        self.heap.peek().map(|event| event.at_nanos)
    }

    pub fn pop(&mut self) -> Option<Event> {
        self.heap.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_in_scheduling_order() {
        let mut queue = EventQueue::default();
        queue.schedule(5, EventKind::Fault { index: 0 });
        queue.schedule(3, EventKind::Fault { index: 1 });
        queue.schedule(5, EventKind::Fault { index: 2 });
        queue.schedule(3, EventKind::Fault { index: 3 });
        let order: Vec<EventKind> = std::iter::from_fn(|| queue.pop().map(|e| e.kind)).collect();
        let index = |kind: &EventKind| match kind {
            EventKind::Fault { index } => *index,
            _ => unreachable!(),
        };
        assert_eq!(order.iter().map(index).collect::<Vec<_>>(), [1, 3, 0, 2]);
    }
}
