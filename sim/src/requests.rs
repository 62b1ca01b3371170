//! Requests in flight in the simulation, from the client's send to their one ending.
//!
//! A slab rather than a map: millions of requests pass through, few are open at once, and a
//! request id encodes its slot, so every lookup is an index. The slot's generation makes the
//! id unique for the engine and lets a stale event (a disconnect timer of a request that has
//! ended) see that its request is gone.

use ferry_engine::{ProcessId, RequestId};

#[derive(Clone, Copy, Debug)]
pub struct OpenRequest {
    /// The traffic stretch that sent it.
    pub source: u32,
    /// The closed-loop client waiting for it; `u32::MAX` for open-loop arrivals.
    pub client: u32,
    pub sent_at_nanos: u64,
    /// The process serving it, once forwarded.
    pub process: Option<ProcessId>,
    /// Its service time when known in advance (a replayed log); else drawn when forwarded.
    pub service_nanos: Option<u64>,
}

pub const NO_CLIENT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    request: Option<OpenRequest>,
}

#[derive(Debug, Default)]
pub struct RequestTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    open: usize,
    /// Open requests that are inside a process.
    in_flight: usize,
}

fn split(id: RequestId) -> (usize, u32) {
    ((id.0 & 0xffff_ffff) as usize, (id.0 >> 32) as u32)
}

impl RequestTable {
    pub fn insert(&mut self, request: OpenRequest) -> RequestId {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    request: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.request = Some(request);
        self.open += 1;
        RequestId((u64::from(slot.generation) << 32) | u64::from(index))
    }

    pub fn get(&self, id: RequestId) -> Option<&OpenRequest> {
        let (index, generation) = split(id);
        let slot = self.slots.get(index)?;
        (slot.generation == generation)
            .then_some(slot.request.as_ref())
            .flatten()
    }

    /// Records that `id` went to `process`; false if it is not open or already forwarded.
    pub fn forward(&mut self, id: RequestId, process: ProcessId) -> Option<OpenRequest> {
        let (index, generation) = split(id);
        let slot = self.slots.get_mut(index)?;
        let request = slot
            .request
            .as_mut()
            .filter(|_| slot.generation == generation)?;
        if request.process.is_some() {
            return None;
        }
        request.process = Some(process);
        self.in_flight += 1;
        Some(*request)
    }

    /// Ends `id`; `None` if it was not open (already ended, or never sent).
    pub fn end(&mut self, id: RequestId) -> Option<OpenRequest> {
        let (index, generation) = split(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let request = slot.request.take()?;
        self.free.push(index as u32);
        self.open -= 1;
        if request.process.is_some() {
            self.in_flight -= 1;
        }
        Some(request)
    }

    pub fn open(&self) -> usize {
        self.open
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Open requests not yet in a process: the engine's queues.
    pub fn queued(&self) -> usize {
        self.open - self.in_flight
    }
}
