//! The system D-Bus connection of the collectors that ask a system service (systemd,
//! systemd-logind): kept between scrapes, dropped after a failed scrape so that the next one
//! connects again (the service or the bus may have restarted).

use std::sync::Mutex;

use kiln_registry::CollectError;
use zbus::blocking::Connection;

#[derive(Default)]
pub(super) struct SystemBus {
    connection: Mutex<Option<Connection>>,
}

impl SystemBus {
    /// Runs `gather` over the connection, connecting first if there is none; `service`
    /// names what the collector asks, for the error when the bus cannot be reached.
    pub(super) fn with(
        &self,
        service: &str,
        gather: impl FnOnce(&Connection) -> Result<(), CollectError>,
    ) -> Result<(), CollectError> {
        let connection = self.connect(service)?;
        let result = gather(&connection);
        if result.is_err() {
            *self.lock() = None;
        }
        result
    }

    fn connect(&self, service: &str) -> Result<Connection, CollectError> {
        let mut cached = self.lock();
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        let connection = Connection::system().map_err(|e| {
            CollectError::failed(
                format!(
                    "connecting to the system D-Bus for {service} (is /run/dbus/system_bus_socket reachable?)"
                ),
                e,
            )
        })?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}
