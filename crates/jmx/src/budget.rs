//! The memory all probes in progress may hold for their answers, in bytes.
//!
//! A probe reserves a little at its start and then, as its answer's body arrives, twice each
//! piece: the body itself and what reading it costs on top (the list of its beans, each bean
//! parsed while it is walked, the samples it yields). A probe that finds the budget spent, at
//! its start or part way through its answer, is answered 503 at once and counted, instead of
//! waiting: a few huge answers then cannot take the process's memory, and the probes of
//! ordinary JVMs (a few MB each) still fit by the dozen.

use std::sync::{Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The default budget: four answers at the 256 MiB cap, or hundreds of NameNodes.
pub const DEFAULT_MIB: usize = 2048;
/// Reserved by every probe at its start: its request, target and the exposition's frame.
const START_BYTES: usize = 64 << 10;
/// Bytes reserved per byte of body.
const PER_BODY_BYTE: usize = 2;

/// The shared budget; one permit is one KiB.
#[derive(Debug)]
pub struct Budget {
    permits: Semaphore,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self {
            permits: Semaphore::new((bytes >> 10).min(Semaphore::MAX_PERMITS)),
        }
    }

    /// Reserves a probe's start; `None` if the budget is spent.
    pub fn start(&self) -> Option<Reservation<'_>> {
        let held = self.permits.try_acquire_many(kib(START_BYTES)).ok()?;
        Some(Reservation {
            budget: self,
            held: Mutex::new(held),
        })
    }
}

/// What one probe holds; given back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a Budget,
    held: Mutex<SemaphorePermit<'a>>,
}

impl Reservation<'_> {
    /// Reserves room for `body_bytes` more of the answer; `false` if the budget is spent.
    pub fn admit(&self, body_bytes: usize) -> bool {
        let wanted = kib(body_bytes.saturating_mul(PER_BODY_BYTE));
        match self.budget.permits.try_acquire_many(wanted) {
            Ok(more) => {
                self.held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .merge(more);
                true
            }
            Err(_) => false,
        }
    }
}

/// Permits for `bytes`, rounded up.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_admitted_while_their_bodies_fit() {
        let budget = Budget::new(1 << 20);
        let first = budget.start().unwrap();
        assert!(first.admit(300 << 10));
        let second = budget.start().unwrap();
        // 2 × 300 KiB + 64 KiB are held: another 300 KiB body does not fit.
        assert!(!second.admit(300 << 10));
        assert!(second.admit(100 << 10));
        drop(first);
        assert!(second.admit(300 << 10));
        drop(second);
        assert_eq!(budget.permits.available_permits(), 1024);
    }

    #[test]
    fn a_spent_budget_refuses_at_the_start() {
        let budget = Budget::new(100 << 10);
        let _one = budget.start().unwrap();
        assert!(budget.start().is_none());
    }
}
