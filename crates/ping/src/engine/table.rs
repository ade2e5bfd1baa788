//! The probe table: every target's schedule, requests in flight and statistics, and the
//! matching of replies to requests.
//!
//! Requests are keyed by (destination address, sequence number). Each destination has its
//! own 16-bit sequence space and a ring of recent requests indexed by sequence, sized so a
//! request stays findable well past its timeout: a reply to it is then told apart as in
//! time, late or duplicate, and one to nothing we sent as foreign.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Outcome, ProbeSettings, Target};
use crate::icmp::packet::{self, COOKIE_LEN};
use crate::icmp::{Family, IcmpSocket};
use crate::stats::Stats;

/// How far ahead of its time a send may go, so that sends due close together share one
/// wake-up of the sender thread (and their replies one of the receiver). At 1 000 targets a
/// second this halves the CPU against 0.5 ms; 2 ms early is nothing against an interval.
const SEND_BATCH: Duration = Duration::from_millis(2);
/// A request stays in its destination's ring for this many timeouts (to spot late replies).
const REMEMBER_TIMEOUTS: u32 = 3;

/// A reply read from a socket, waiting to be matched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub(super) from: IpAddr,
    pub(super) sequence: u16,
    pub(super) token: Option<u64>,
    pub(super) kernel_time_ns: Option<i64>,
    pub(super) received_at: Instant,
    pub(super) hop_limit: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    InFlight,
    Answered,
    TimedOut,
}

/// One request in a destination's ring.
#[derive(Debug, Clone, Copy)]
struct Sent {
    sequence: u16,
    slot: u32,
    generation: u32,
    state: State,
    sent_at: Instant,
    sent_ns: i64,
    /// Whether the payload was long enough to carry the whole cookie.
    cookie: bool,
}

impl Sent {
    /// An unused ring entry (its time is never read).
    fn free(now: Instant) -> Self {
        Self {
            sequence: 0,
            slot: u32::MAX,
            generation: 0,
            state: State::Free,
            sent_at: now,
            sent_ns: 0,
            cookie: false,
        }
    }
}

/// Requests to one address, from all the probes that ping it.
#[derive(Debug)]
struct Destination {
    next_sequence: u16,
    ring: Vec<Sent>,
    users: u32,
    /// Sum over the probes here of the requests one may have outstanding in the ring.
    budget: u32,
}

impl Destination {
    fn new() -> Self {
        Self {
            next_sequence: 0,
            ring: Vec::new(),
            users: 0,
            budget: 0,
        }
    }

    fn entry(&mut self, sequence: u16) -> Option<&mut Sent> {
        let mask = self.ring.len().checked_sub(1)?;
        let entry = &mut self.ring[usize::from(sequence) & mask];
        (entry.state != State::Free && entry.sequence == sequence).then_some(entry)
    }

    /// Grows the ring when the budget needs more room (it never shrinks).
    fn fit(&mut self, now: Instant) {
        let wanted = (self.budget as usize * 2)
            .next_power_of_two()
            .clamp(8, 65536);
        if wanted <= self.ring.len() {
            return;
        }
        let mut ring = vec![Sent::free(now); wanted];
        for sent in self.ring.iter().filter(|s| s.state != State::Free) {
            ring[usize::from(sent.sequence) & (wanted - 1)] = *sent;
        }
        self.ring = ring;
    }
}

/// A one-time probe of `/probe`: its outcomes go back to the waiting request.
#[derive(Debug)]
struct OneShot {
    to_send: u32,
    pending: u32,
    outcomes: Vec<Outcome>,
    done: Option<mpsc::Sender<Vec<Outcome>>>,
}

#[derive(Debug)]
struct Probe {
    target: Arc<Target>,
    ip: IpAddr,
    settings: ProbeSettings,
    next_send: Instant,
    stats: Stats,
    budget: u32,
    one_shot: Option<OneShot>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    probe: Option<Probe>,
}

/// A probe's place in the table; the generation tells a reused slot from the one meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SlotId {
    index: u32,
    generation: u32,
}

/// A copy of one target's numbers, taken for a scrape.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    /// The target.
    pub target: Arc<Target>,
    /// The address now pinged.
    pub ip: IpAddr,
    /// Its counters, histogram and window.
    pub stats: Stats,
}

/// Per-family socket counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct FamilyCounters {
    /// Packets that matched no request of ours.
    pub foreign: u64,
    /// Receive calls that failed.
    pub receive_errors: u64,
}

/// Everything the engine tracks.
#[derive(Debug)]
pub(super) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_key: HashMap<(String, Family), u32>,
    destinations: HashMap<IpAddr, Destination>,
    schedule: BinaryHeap<Reverse<(Instant, SlotId)>>,
    deadlines: BinaryHeap<Reverse<(Instant, IpAddr, u16)>>,
    bounds: Arc<[f64]>,
    history: usize,
    token: u64,
    identifier: u16,
    packet: Vec<u8>,
    pub(super) families: [FamilyCounters; 2],
}

/// A probe wanted by the configuration.
#[derive(Debug, Clone)]
pub struct DesiredProbe {
    /// The target (host and family) it measures.
    pub target: Arc<Target>,
    /// The address to ping.
    pub ip: IpAddr,
    /// Its interval, timeout and size.
    pub settings: ProbeSettings,
}

impl Table {
    pub(super) fn new(bounds: Arc<[f64]>, history: usize, token: u64, identifier: u16) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            destinations: HashMap::new(),
            schedule: BinaryHeap::new(),
            deadlines: BinaryHeap::new(),
            bounds,
            history,
            token,
            identifier,
            packet: Vec::with_capacity(128),
            families: [FamilyCounters::default(); 2],
        }
    }

    /// Makes the table ping exactly `desired`: new targets start (spread over their
    /// interval), changed ones keep their statistics, removed ones stop.
    pub(super) fn apply(&mut self, desired: Vec<DesiredProbe>, now: Instant) {
        let mut wanted: HashMap<(String, Family), ()> = HashMap::with_capacity(desired.len());
        let mut added = Vec::new();
        for probe in desired {
            let key = (probe.target.name.clone(), probe.target.family);
            if wanted.insert(key.clone(), ()).is_some() {
                continue;
            }
            match self.by_key.get(&key) {
                Some(&index) => self.update(index, probe, now),
                None => added.push((key, probe)),
            }
        }
        let gone: Vec<u32> = self
            .by_key
            .iter()
            .filter(|(key, _)| !wanted.contains_key(*key))
            .map(|(_, &index)| index)
            .collect();
        for index in gone {
            self.remove(index);
        }
        let count = added.len() as u32;
        for (i, (key, probe)) in added.into_iter().enumerate() {
            let phase = probe
                .settings
                .interval
                .mul_f64(f64::from(i as u32) / f64::from(count.max(1)));
            let index = self.insert(probe, now + phase, None);
            self.by_key.insert(key, index);
        }
    }

    fn update(&mut self, index: u32, desired: DesiredProbe, now: Instant) {
        let slot = &mut self.slots[index as usize];
        let generation = slot.generation;
        let Some(probe) = slot.probe.as_mut() else {
            return;
        };
        probe.target = desired.target;
        let old_ip = probe.ip;
        let old_budget = probe.budget;
        let interval_changed = probe.settings.interval != desired.settings.interval;
        probe.settings = desired.settings;
        probe.budget = budget(&desired.settings);
        if interval_changed {
            probe.next_send = probe.next_send.min(now + desired.settings.interval);
            let id = SlotId { index, generation };
            self.schedule.push(Reverse((probe.next_send, id)));
        }
        let new_budget = probe.budget;
        if old_ip != desired.ip {
            probe.ip = desired.ip;
            self.leave(old_ip, old_budget);
            self.join(desired.ip, new_budget, now);
        } else if let Some(destination) = self.destinations.get_mut(&old_ip) {
            destination.budget = destination.budget - old_budget + new_budget;
            destination.fit(now);
        }
    }

    fn insert(
        &mut self,
        desired: DesiredProbe,
        first_send: Instant,
        one_shot: Option<OneShot>,
    ) -> u32 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        });
        let budget = budget(&desired.settings);
        self.join(desired.ip, budget, first_send);
        let slot = &mut self.slots[index as usize];
        slot.probe = Some(Probe {
            target: desired.target,
            ip: desired.ip,
            settings: desired.settings,
            next_send: first_send,
            stats: Stats::new(self.bounds.len(), self.history),
            budget,
            one_shot,
        });
        let id = SlotId {
            index,
            generation: slot.generation,
        };
        self.schedule.push(Reverse((first_send, id)));
        index
    }

    fn remove(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let Some(probe) = slot.probe.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        if probe.one_shot.is_none() {
            self.by_key
                .remove(&(probe.target.name.clone(), probe.target.family));
        }
        self.leave(probe.ip, probe.budget);
    }

    fn join(&mut self, ip: IpAddr, budget: u32, now: Instant) {
        let destination = self.destinations.entry(ip).or_insert_with(Destination::new);
        destination.users += 1;
        destination.budget += budget;
        destination.fit(now);
    }

    fn leave(&mut self, ip: IpAddr, budget: u32) {
        if let Some(destination) = self.destinations.get_mut(&ip) {
            destination.users -= 1;
            destination.budget -= budget;
            self.forget_if_idle(ip);
        }
    }

    /// Drops a destination nobody pings any more once nothing sent to it is in flight
    /// (until then its timeouts still count for the probe that sent).
    fn forget_if_idle(&mut self, ip: IpAddr) {
        if self.destinations.get(&ip).is_some_and(|d| {
            d.users == 0 && !d.ring.iter().any(|sent| sent.state == State::InFlight)
        }) {
            self.destinations.remove(&ip);
        }
    }

    /// Starts a one-time probe of `count` requests; its outcomes arrive on `done`.
    pub(super) fn start_one_shot(
        &mut self,
        desired: DesiredProbe,
        count: u32,
        done: mpsc::Sender<Vec<Outcome>>,
        now: Instant,
    ) {
        let one_shot = OneShot {
            to_send: count,
            pending: count,
            outcomes: Vec::with_capacity(count as usize),
            done: Some(done),
        };
        self.insert(desired, now, Some(one_shot));
    }

    /// Sends what is due, expires what has timed out, and says when to come back.
    pub(super) fn tick(
        &mut self,
        sockets: &[Option<IcmpSocket>; 2],
        now: Instant,
    ) -> Option<Instant> {
        let horizon = now + SEND_BATCH;
        while let Some(&Reverse((due, id))) = self.schedule.peek() {
            if due > horizon {
                break;
            }
            self.schedule.pop();
            self.send(id, due, sockets, now);
        }
        while let Some(&Reverse((deadline, ip, sequence))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            self.expire(ip, sequence);
        }
        let next_send = self.schedule.peek().map(|Reverse((due, _))| *due);
        let next_deadline = self
            .deadlines
            .peek()
            .map(|Reverse((deadline, ..))| *deadline);
        match (next_send, next_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn send(&mut self, id: SlotId, due: Instant, sockets: &[Option<IcmpSocket>; 2], now: Instant) {
        let slot = &mut self.slots[id.index as usize];
        let Some(probe) = slot.probe.as_mut() else {
            return;
        };
        // Entries left behind by a removal or a rescheduling are skipped.
        if slot.generation != id.generation || probe.next_send != due {
            return;
        }
        let Some(destination) = self.destinations.get_mut(&probe.ip) else {
            return;
        };
        let family = Family::of(probe.ip);
        let sequence = destination.next_sequence;
        destination.next_sequence = sequence.wrapping_add(1);

        let size = probe.settings.size;
        packet::echo_request(
            &mut self.packet,
            family,
            self.identifier,
            sequence,
            self.token,
            realtime_ns(),
            size,
        );
        // The send time is read last, just before the system call, as iputils does: the
        // RTT then covers the network and the kernel, not the building of the packet.
        let sent_at = Instant::now();
        let sent_ns = realtime_ns();
        let result = match &sockets[family.index()] {
            Some(socket) => socket.send_to(&self.packet, probe.ip),
            None => Err(std::io::Error::from(std::io::ErrorKind::Unsupported)),
        };
        probe.stats.requests += 1;
        match result {
            Ok(_) => {
                let mask = destination.ring.len() - 1;
                destination.ring[usize::from(sequence) & mask] = Sent {
                    sequence,
                    slot: id.index,
                    generation: id.generation,
                    state: State::InFlight,
                    sent_at,
                    sent_ns,
                    cookie: size >= COOKIE_LEN,
                };
                self.deadlines.push(Reverse((
                    sent_at + probe.settings.timeout,
                    probe.ip,
                    sequence,
                )));
            }
            Err(error) => {
                probe.stats.send_failed();
                tracing::debug!(target_host = %probe.target.name, ip = %probe.ip, err = %error, "Cannot send an echo request.");
                if let Some(one_shot) = &mut probe.one_shot {
                    one_shot
                        .outcomes
                        .push(Outcome::SendError(error.to_string()));
                    one_shot.pending -= 1;
                }
            }
        }

        // The next send: one interval on, or, after a stall (a suspended host), one
        // interval from now rather than a burst of catch-up sends.
        let next = match &mut probe.one_shot {
            Some(one_shot) => {
                one_shot.to_send -= 1;
                (one_shot.to_send > 0).then(|| due + probe.settings.interval)
            }
            None => {
                let next = due + probe.settings.interval;
                Some(if next < now {
                    now + probe.settings.interval
                } else {
                    next
                })
            }
        };
        if let Some(next) = next {
            probe.next_send = next;
            self.schedule.push(Reverse((next, id)));
        }
        self.finish_one_shot(id.index);
    }

    fn expire(&mut self, ip: IpAddr, sequence: u16) {
        let Some(entry) = self
            .destinations
            .get_mut(&ip)
            .and_then(|d| d.entry(sequence))
        else {
            return;
        };
        if entry.state != State::InFlight {
            return;
        }
        entry.state = State::TimedOut;
        let (index, generation) = (entry.slot, entry.generation);
        self.record(index, generation, |probe| {
            probe.stats.timed_out();
            if let Some(one_shot) = &mut probe.one_shot {
                one_shot.outcomes.push(Outcome::Timeout);
                one_shot.pending -= 1;
            }
        });
        self.forget_if_idle(ip);
    }

    /// Matches a reply to its request and records what it means.
    pub(super) fn receive(&mut self, family: Family, reply: &Reply) {
        let token = self.token;
        let Some(entry) = self
            .destinations
            .get_mut(&reply.from)
            .and_then(|d| d.entry(reply.sequence))
            .filter(|entry| !entry.cookie || reply.token == Some(token))
        else {
            self.families[family.index()].foreign += 1;
            return;
        };
        let (index, generation) = (entry.slot, entry.generation);
        let rtt = round_trip(entry, reply);
        match entry.state {
            State::Answered => {
                self.record(index, generation, |probe| probe.stats.duplicates += 1);
            }
            State::TimedOut => {
                entry.state = State::Answered;
                self.record(index, generation, |probe| probe.stats.late += 1);
            }
            State::InFlight => {
                entry.state = State::Answered;
                let bounds = Arc::clone(&self.bounds);
                self.record(index, generation, |probe| {
                    if rtt > probe.settings.timeout {
                        // Its deadline passed while the sender was busy: late, not in time.
                        probe.stats.timed_out();
                        probe.stats.late += 1;
                        if let Some(one_shot) = &mut probe.one_shot {
                            one_shot.outcomes.push(Outcome::Timeout);
                            one_shot.pending -= 1;
                        }
                        return;
                    }
                    let seconds = rtt.as_secs_f64();
                    probe.stats.answered(seconds, &bounds, reply.hop_limit);
                    if let Some(one_shot) = &mut probe.one_shot {
                        one_shot.outcomes.push(Outcome::Reply {
                            rtt: seconds,
                            hop_limit: reply.hop_limit,
                        });
                        one_shot.pending -= 1;
                    }
                });
                self.forget_if_idle(reply.from);
            }
            State::Free => {}
        }
    }

    /// Applies `update` to the probe in `index` if it is still the one that sent.
    fn record(&mut self, index: u32, generation: u32, update: impl FnOnce(&mut Probe)) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        if let Some(probe) = slot.probe.as_mut() {
            update(probe);
        }
        self.finish_one_shot(index);
    }

    /// Hands a one-time probe's outcomes back once all are in, and frees its slot.
    fn finish_one_shot(&mut self, index: u32) {
        let Some(probe) = self.slots[index as usize].probe.as_mut() else {
            return;
        };
        let Some(one_shot) = probe.one_shot.as_mut() else {
            return;
        };
        if one_shot.pending > 0 {
            return;
        }
        if let Some(done) = one_shot.done.take() {
            // The request may have given up already; then nobody listens.
            let _ = done.send(std::mem::take(&mut one_shot.outcomes));
        }
        self.remove(index);
    }

    /// Copies every configured target's numbers into `out` (cleared first).
    pub(super) fn snapshot(&self, out: &mut Vec<TargetSnapshot>) {
        out.clear();
        out.extend(self.by_key.values().filter_map(|&index| {
            let probe = self.slots[index as usize].probe.as_ref()?;
            Some(TargetSnapshot {
                target: Arc::clone(&probe.target),
                ip: probe.ip,
                stats: probe.stats.clone(),
            })
        }));
    }

    /// Changes the window size of every target.
    pub(super) fn set_history(&mut self, history: usize) {
        self.history = history;
        for probe in self.slots.iter_mut().filter_map(|s| s.probe.as_mut()) {
            probe.stats.resize_window(history);
        }
    }
}

/// How many requests a probe may have in its destination's ring at once.
fn budget(settings: &ProbeSettings) -> u32 {
    let interval = settings.interval.max(Duration::from_millis(1));
    let remembered = settings.timeout * REMEMBER_TIMEOUTS;
    (remembered.as_nanos() / interval.as_nanos()).min(65536) as u32 + 1
}

/// The round-trip time: kernel receive stamp minus the send stamp where both exist and
/// agree (a clock step between them is ruled out against the monotonic clock), else the
/// monotonic times around the system calls.
fn round_trip(sent: &Sent, reply: &Reply) -> Duration {
    let monotonic = reply.received_at.saturating_duration_since(sent.sent_at);
    let Some(received_ns) = reply.kernel_time_ns else {
        return monotonic;
    };
    let kernel = received_ns - sent.sent_ns;
    match u64::try_from(kernel) {
        Ok(nanos) if Duration::from_nanos(nanos) <= monotonic + Duration::from_millis(1) => {
            Duration::from_nanos(nanos)
        }
        _ => monotonic,
    }
}

/// Nanoseconds since the epoch on CLOCK_REALTIME, the clock of kernel receive stamps.
pub(super) fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
