//! Process signals: SIGINT/SIGTERM end the exporter, SIGHUP reloads its configuration.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Resolves on the first SIGINT or SIGTERM, logging which one arrived.
pub async fn shutdown() {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("Cannot install signal handlers; stop the exporter with SIGKILL.");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!(
        signal = name,
        "Received shutdown signal; shutting down gracefully."
    );
}

/// A stream of SIGHUPs. Closed at once if the handler cannot be installed.
pub fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    if let Ok(mut hangup) = signal(SignalKind::hangup()) {
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                // A reload already queued covers this one too.
                let _ = tx.try_send(());
            }
        });
    }
    rx
}
