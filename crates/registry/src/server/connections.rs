//! The table of open connections: a cap on how many are held at once and, when the cap is
//! reached, room made for a newcomer by closing the connection that has gone longest
//! without a request in progress.
//!
//! Refusing newcomers instead would let anyone who opens enough idle, half-sent or
//! never-reading connections lock every scraper out for as long as they keep them open.
//! Evicting the longest-idle one means such connections only ever push each other out:
//! a scraper's connection is the newest when it arrives and is busy a moment later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// Every open connection of one exporter, across all its listeners.
#[derive(Debug)]
pub(super) struct Connections {
    capacity: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
}

/// What the table knows about one connection.
#[derive(Debug)]
pub(super) struct Connection {
    epoch: Instant,
    /// Requests being answered on it (several at once over HTTP/2).
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` when it was opened or last finished a request.
    idle_since_ms: AtomicU64,
    evicted: Notify,
}

impl Connections {
    /// Holds at most `capacity` connections (at least one).
    pub(super) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
        })
    }

    /// Admits a new connection, closing the longest-idle one when the table is full.
    /// `None` when every held connection is answering a request: the newcomer is refused.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.open.len() >= self.capacity {
            let victim = table
                .open
                .iter()
                .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.idle_since_ms.load(Ordering::Relaxed))
                .map(|(&id, _)| id)?;
            if let Some(connection) = table.open.remove(&victim) {
                // `notify_one` keeps the wake-up even if the task is not waiting yet.
                connection.evicted.notify_one();
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let connection = Arc::new(Connection {
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(millis_since(self.epoch)),
            evicted: Notify::new(),
        });
        table.open.insert(id, Arc::clone(&connection));
        Some(Admitted {
            id,
            table: Arc::clone(self),
            connection,
        })
    }

    fn remove(&self, id: u64) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.open.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .len()
    }
}

/// A place in the table, given back when dropped.
#[derive(Debug)]
pub(super) struct Admitted {
    id: u64,
    table: Arc<Connections>,
    connection: Arc<Connection>,
}

impl Admitted {
    /// The connection's state, for its request handler.
    pub(super) fn connection(&self) -> Arc<Connection> {
        Arc::clone(&self.connection)
    }

    /// Completes when the table closed this connection to make room for another.
    pub(super) async fn evicted(&self) {
        self.connection.evicted.notified().await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

impl Connection {
    /// Marks a request in progress until the guard is dropped; a connection with one is
    /// never evicted.
    pub(super) fn begin_request(self: &Arc<Self>) -> RequestInProgress {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestInProgress(Arc::clone(self))
    }
}

/// See [`Connection::begin_request`].
#[derive(Debug)]
pub(super) struct RequestInProgress(Arc<Connection>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .idle_since_ms
            .store(millis_since(connection.epoch), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_table_closes_the_longest_idle_connection() {
        let table = Connections::new(2);
        let oldest = table.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let busy_and_older = table.admit().unwrap();
        let _request = busy_and_older.connection().begin_request();
        // Full: the third closes the idle one, never the busy one.
        let third = table.admit().unwrap();
        tokio::time::timeout(Duration::from_secs(1), oldest.evicted())
            .await
            .expect("the idle connection is told to close");
        assert_eq!(table.len(), 2);
        drop(oldest);
        assert_eq!(table.len(), 2, "an evicted entry is not removed twice");
        // Now both held connections are busy: a newcomer is refused.
        let _second_request = third.connection().begin_request();
        assert!(table.admit().is_none());
    }

    #[tokio::test]
    async fn a_finished_request_makes_the_connection_idle_from_then() {
        let table = Connections::new(2);
        let first = table.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = table.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // The first finishes a request after the second was opened: the second has now
        // been idle longer and is the one to go.
        drop(first.connection().begin_request());
        let _third = table.admit().unwrap();
        tokio::time::timeout(Duration::from_secs(1), second.evicted())
            .await
            .expect("the connection idle longest is closed");
    }
}
