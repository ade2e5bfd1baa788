//! Scrapes every target on its own task, each bounded by a timeout, so a slow or dead host
//! delays nothing but its own row. Targets are spread over the refresh interval rather
//! than all asked at once.

use std::time::{Duration, Instant};

use kiln_scraper::{ScrapeClient, ScrapeError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::fleet::{Answer, Failure, TargetId};
use super::reading::Reading;
use super::units::duration;

/// Scrapes one URL and keeps what `kiln top` shows.
pub async fn scrape(client: &ScrapeClient, url: &str) -> Result<Reading, Failure> {
    let scrape = client.scrape(url).await.map_err(|e| failure(&e))?;
    Ok(Reading::from_text(&scrape.body, scrape.format()))
}

/// Starts one task per target, each sending an [`Answer`] every `refresh`. The tasks end
/// when the set is dropped or the receiver goes away.
pub fn spawn(
    targets: Vec<(TargetId, String)>,
    client: ScrapeClient,
    refresh: Duration,
    answers: mpsc::UnboundedSender<Answer>,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let count = u32::try_from(targets.len().max(1)).unwrap_or(u32::MAX);
    for (n, (id, url)) in targets.into_iter().enumerate() {
        let client = client.clone();
        let answers = answers.clone();
        let offset = refresh / count * u32::try_from(n).unwrap_or(0);
        tasks.spawn(async move {
            let start = tokio::time::Instant::now() + offset;
            let mut ticks = tokio::time::interval_at(start, refresh);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first round is asked at once, so the screen fills right away.
            let mut first = true;
            loop {
                if !std::mem::take(&mut first) {
                    ticks.tick().await;
                }
                let started = Instant::now();
                let outcome = scrape(&client, &url).await;
                let answer = Answer {
                    id,
                    outcome,
                    at: Instant::now(),
                    took: started.elapsed(),
                };
                if answers.send(answer).is_err() {
                    return;
                }
            }
        });
    }
    tasks
}

/// A few words for the host row, and the whole error for the detail pane.
pub fn failure(error: &ScrapeError) -> Failure {
    let full = error.to_string();
    let short = match error {
        ScrapeError::Timeout(after) => format!("timed out after {}", duration(*after)),
        ScrapeError::Status { status, .. } => format!("HTTP {status}"),
        ScrapeError::Url { .. } => "invalid URL".to_owned(),
        ScrapeError::TooLarge(_) => "answer too large".to_owned(),
        _ => {
            const KNOWN: [(&str, &str); 6] = [
                ("Connection refused", "connection refused"),
                ("No route to host", "no route to host"),
                ("Network is unreachable", "network unreachable"),
                ("Connection reset", "connection reset"),
                ("dns error", "cannot resolve host"),
                ("certificate", "TLS certificate rejected"),
            ];
            KNOWN
                .iter()
                .find(|(needle, _)| full.contains(needle))
                .map_or_else(|| full.clone(), |(_, short)| (*short).to_owned())
        }
    };
    Failure { short, full }
}
