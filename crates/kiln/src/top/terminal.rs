//! The two ways `kiln top` shows the fleet: live in the terminal, or once as text.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use kiln_scraper::ScrapeClient;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::layout::Rect;
use ratatui::widgets::Widget as _;
use tokio::sync::{mpsc, watch};

use super::app::App;
use super::fleet::{Answer, Failure, Fleet};
use super::prometheus::{Detail, PrometheusSource, Snapshot};
use super::render::{Screen, buffer_text};
use super::targets::HostSpec;
use super::{Settings, poller};

/// How often new answers are drawn at most; keys are drawn at once.
const FRAME: Duration = Duration::from_millis(250);

/// Where the fleet is read from.
#[derive(Debug, Clone)]
pub enum Feed {
    /// Every exporter of these hosts, polled directly.
    Exporters(Vec<HostSpec>),
    /// A Prometheus server that scrapes them.
    Prometheus(Box<PrometheusSource>),
}

/// Reads the whole fleet from Prometheus every `refresh` and sends each read; ends when
/// the receiver goes away. The GPU detail is read for the hosts `near` names (see
/// [`near_view`]); when they change, as the view scrolls or sorts, the next read starts
/// at once so that the rows coming into view fill in without waiting for the tick.
fn spawn_prometheus(
    source: PrometheusSource,
    refresh: Duration,
    reads: mpsc::UnboundedSender<Result<Snapshot, Failure>>,
    mut near: watch::Receiver<Vec<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(refresh);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                changed = near.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    ticks.reset();
                }
            }
            let hosts = near.borrow_and_update().clone();
            if reads
                .send(source.read_with(Detail::Hosts(&hosts)).await)
                .is_err()
            {
                return;
            }
        }
    })
}

/// The names of the hosts that are on screen or one screen away in the list's order: each
/// host takes at least one line, so no host further than `height` from the selected one
/// can be in view.
fn near_view(fleet: &Fleet, app: &App, height: usize) -> Vec<String> {
    let order = app.visible(fleet);
    let selected = app.selected.min(order.len().saturating_sub(1));
    let from = selected.saturating_sub(height);
    let to = (selected + height + 1).min(order.len());
    order
        .get(from..to)
        .unwrap_or_default()
        .iter()
        .map(|&index| fleet.hosts[index].name.clone())
        .collect()
}

/// Shows the fleet live until `q`, Ctrl-C, SIGINT or SIGTERM.
pub async fn run(feed: Feed, settings: Settings) -> Result<()> {
    let (sender, mut answers) = mpsc::unbounded_channel();
    let (read_sender, mut reads) = mpsc::unbounded_channel();
    let (near_sender, near) = watch::channel(Vec::new());
    // Each feed keeps only its own sender: the other channel closes and its branch below
    // stays idle.
    let (mut fleet, _scrapers, _reader) = match feed {
        Feed::Exporters(hosts) => {
            let fleet = Fleet::new(&hosts);
            let client = ScrapeClient::new()
                .context("cannot set up the HTTP client")?
                .timeout(settings.timeout);
            let scrapers = poller::spawn(fleet.urls(), client, settings.refresh, sender);
            drop(read_sender);
            (fleet, Some(scrapers), None)
        }
        Feed::Prometheus(source) => {
            drop(sender);
            let reader = spawn_prometheus(*source, settings.refresh, read_sender, near);
            (Fleet::new(&[]), None, Some(AbortOnDrop(reader)))
        }
    };
    let mut keys = key_events();
    let mut terminal = ratatui::try_init().context("cannot take over the terminal")?;
    let mut app = App::default();
    let shutdown = kiln_registry::signals::shutdown();
    tokio::pin!(shutdown);
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut dirty, mut fresh) = (true, false);
    let outcome = loop {
        if std::mem::take(&mut dirty) {
            let height = terminal.size().map_or(0, |size| usize::from(size.height));
            let hosts = near_view(&fleet, &app, height);
            near_sender.send_if_modified(|near| {
                let changed = *near != hosts;
                if changed {
                    *near = hosts;
                }
                changed
            });
            let drawn = terminal.draw(|frame| {
                let screen = Screen {
                    fleet: &fleet,
                    app: &app,
                    refresh: settings.refresh,
                    interactive: true,
                };
                frame.render_widget(screen, frame.area());
            });
            if let Err(error) = drawn {
                break Err(error).context("cannot draw");
            }
        }
        tokio::select! {
            Some(answer) = answers.recv() => {
                fleet.record(answer);
                while let Ok(answer) = answers.try_recv() {
                    fleet.record(answer);
                }
                fresh = true;
            }
            Some(read) = reads.recv() => {
                fleet.replace(read);
                fresh = true;
            }
            event = keys.recv() => match event {
                Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    let shown = app.visible(&fleet).len();
                    app.key(key, shown);
                    if app.quit {
                        break Ok(());
                    }
                    dirty = true;
                }
                Some(Event::Resize(..)) => dirty = true,
                Some(_) => {}
                None => break Ok(()),
            },
            _ = frames.tick() => dirty = std::mem::take(&mut fresh),
            () = &mut shutdown => break Ok(()),
        }
    };
    ratatui::restore();
    outcome
}

/// Stops the Prometheus reader when the view ends.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Terminal events, read on their own thread because reading blocks.
fn key_events() -> mpsc::UnboundedReceiver<Event> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let reader = std::thread::Builder::new()
        .name("kiln-top-keys".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
    if let Err(error) = reader {
        tracing::warn!(%error, "cannot read keys; quit with Ctrl-C from another terminal");
    }
    receiver
}

/// Reads the fleet once and returns the screen as text `width` columns wide: from
/// Prometheus in one read (its rates need no second one), from exporters in two.
pub async fn once(feed: Feed, settings: Settings, width: u16) -> Result<Vec<String>> {
    let hosts = match feed {
        Feed::Exporters(hosts) => hosts,
        Feed::Prometheus(source) => {
            let mut fleet = Fleet::new(&[]);
            let snapshot = source
                .read()
                .await
                .map_err(|failure| anyhow::anyhow!(failure.full))?;
            fleet.replace(Ok(snapshot));
            return Ok(draw_text(&fleet, &App::default(), settings.refresh, width));
        }
    };
    once_direct(&hosts, settings, width).await
}

/// Scrapes every target twice, `settings.refresh` apart so that rates exist.
async fn once_direct(hosts: &[HostSpec], settings: Settings, width: u16) -> Result<Vec<String>> {
    let mut fleet = Fleet::new(hosts);
    let client = ScrapeClient::new()
        .context("cannot set up the HTTP client")?
        .timeout(settings.timeout);
    let urls = fleet.urls();
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(settings.refresh).await;
        }
        let mut scrapes = tokio::task::JoinSet::new();
        for (id, url) in urls.iter().cloned() {
            let client = client.clone();
            scrapes.spawn(async move {
                let started = Instant::now();
                let outcome = poller::scrape(&client, &url).await;
                Answer {
                    id,
                    outcome,
                    at: Instant::now(),
                    took: started.elapsed(),
                }
            });
        }
        while let Some(answer) = scrapes.join_next().await {
            fleet.record(answer.context("a scrape task failed")?);
        }
    }
    Ok(draw_text(&fleet, &App::default(), settings.refresh, width))
}

/// The screen as text: as tall as its content, without the key footer.
pub fn draw_text(fleet: &Fleet, app: &App, refresh: Duration, width: u16) -> Vec<String> {
    let rows: usize = fleet.hosts.iter().map(|h| 1 + h.reading().gpus.len()).sum();
    let height = u16::try_from(rows + 3).unwrap_or(u16::MAX);
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    Screen {
        fleet,
        app,
        refresh,
        interactive: false,
    }
    .render(area, &mut buf);
    let mut lines = buffer_text(&buf);
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn the_hosts_near_the_view_are_a_screen_either_side_of_the_selected_one() {
        let names: Vec<String> = (1..=10).map(|n| format!("gpu{n}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let fleet = Fleet::named(&names);
        let mut app = App {
            selected: 4,
            ..App::default()
        };
        assert_eq!(
            near_view(&fleet, &app, 2),
            ["gpu3", "gpu4", "gpu5", "gpu6", "gpu7"]
        );
        // At the top, and past the end of a list that a filter shortened.
        app.selected = 0;
        assert_eq!(near_view(&fleet, &app, 2), ["gpu1", "gpu2", "gpu3"]);
        app.selected = 9;
        app.filter = "gpu1".into();
        assert_eq!(near_view(&fleet, &app, 1), ["gpu1", "gpu10"]);
    }

    /// An answer with no series, in the query API's shape.
    const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

    #[tokio::test]
    async fn hosts_coming_near_the_view_start_a_read_at_once_that_asks_for_them() {
        let asked = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = Arc::clone(&asked);
        let address = kiln_test_support::serve_queries(move |query| {
            record.lock().unwrap().push(query.to_owned());
            EMPTY.to_owned()
        });
        let source =
            PrometheusSource::new(&format!("http://{address}"), ScrapeClient::new().unwrap())
                .unwrap();
        let (reads, mut read) = mpsc::unbounded_channel();
        let (near, hosts) = watch::channel(Vec::new());
        // A refresh far longer than the test: any read after the first comes from `near`.
        let reader = AbortOnDrop(spawn_prometheus(
            source,
            Duration::from_secs(3600),
            reads,
            hosts,
        ));
        let within = Duration::from_secs(20);
        let first = tokio::time::timeout(within, read.recv()).await;
        assert!(matches!(first, Ok(Some(Ok(_)))), "{first:?}");
        let before = asked.lock().unwrap().len();
        assert!(
            !asked
                .lock()
                .unwrap()
                .iter()
                .any(|q| q.contains("instance%3D~")),
            "no host is near the view yet: {:?}",
            asked.lock().unwrap()
        );

        near.send_replace(vec!["gpu7.example".to_owned()]);
        let second = tokio::time::timeout(within, read.recv()).await;
        assert!(matches!(second, Ok(Some(Ok(_)))), "{second:?}");
        let queries = asked.lock().unwrap()[before..].to_vec();
        assert!(
            queries.iter().any(|q| q.contains("gpu7%5C%5C.example")),
            "the detail queries name the host near the view: {queries:?}"
        );
        drop(reader);
    }
}
