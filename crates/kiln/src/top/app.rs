//! What the user chose to see: order, filter, selected host, open panes; and what each key
//! does to it. No drawing and no terminal here, so every key can be tested directly.

use std::cmp::Ordering;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fleet::{Fleet, Host, Status};
use super::reading::memory_used;

/// What the host list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Host,
    Cpu,
    Memory,
    GpuUtilization,
    GpuTemperature,
    PingLoss,
}

impl SortKey {
    const ALL: [Self; 6] = [
        Self::Host,
        Self::Cpu,
        Self::Memory,
        Self::GpuUtilization,
        Self::GpuTemperature,
        Self::PingLoss,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::GpuUtilization => "gpu util",
            Self::GpuTemperature => "gpu temp",
            Self::PingLoss => "ping loss",
        }
    }

    fn next(self) -> Self {
        let at = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(at + 1) % Self::ALL.len()]
    }

    /// The number a host is ordered by; `None` sorts last.
    fn value(self, host: &Host) -> Option<f64> {
        if host.status() != Status::Up {
            return None;
        }
        let reading = host.reading();
        match self {
            Self::Host => None,
            Self::Cpu => host.rates().map(|r| r.cpu_busy),
            Self::Memory => reading.node.as_ref().and_then(memory_used),
            Self::GpuUtilization => reading.max_gpu_utilization(),
            Self::GpuTemperature => reading.max_gpu_temperature(),
            Self::PingLoss => reading
                .pings
                .iter()
                .filter_map(|p| p.loss_ratio)
                .reduce(f64::max),
        }
    }
}

/// The state of the screen apart from the data.
#[derive(Debug, Clone)]
pub struct App {
    pub sort: SortKey,
    /// Host names sort A–Z and numbers highest first; this turns either around.
    pub reversed: bool,
    pub filter: String,
    /// Keys go to the filter while it is being typed.
    pub editing_filter: bool,
    /// Index into [`App::visible`].
    pub selected: usize,
    pub detail: bool,
    pub help: bool,
    pub quit: bool,
}

impl Default for App {
    fn default() -> Self {
        Self {
            sort: SortKey::Host,
            reversed: false,
            filter: String::new(),
            editing_filter: false,
            selected: 0,
            detail: false,
            help: false,
            quit: false,
        }
    }
}

impl App {
    /// The hosts to show, in order, as indexes into `fleet.hosts`.
    pub fn visible(&self, fleet: &Fleet) -> Vec<usize> {
        let filter = self.filter.to_lowercase();
        let mut keyed: Vec<(usize, Option<f64>)> = fleet
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, host)| filter.is_empty() || matches(host, &filter))
            .map(|(index, host)| (index, self.sort.value(host)))
            .collect();
        let sort = self.sort;
        keyed.sort_by(|(a, va), (b, vb)| {
            let order = match sort {
                SortKey::Host => natural(&fleet.hosts[*a].name, &fleet.hosts[*b].name),
                _ => match (va, vb) {
                    (Some(x), Some(y)) => y.total_cmp(x),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
            };
            if self.reversed {
                order.reverse()
            } else {
                order
            }
        });
        keyed.into_iter().map(|(index, _)| index).collect()
    }

    /// The selected host, as an index into `fleet.hosts`.
    pub fn selected_host(&self, fleet: &Fleet) -> Option<usize> {
        self.visible(fleet).get(self.selected).copied()
    }

    /// Applies one key press; `shown` is how many hosts are visible now.
    pub fn key(&mut self, key: KeyEvent, shown: usize) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Char(c) => self.filter.push(c),
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing_filter = false;
                }
                _ => {}
            }
            self.selected = 0;
            return;
        }
        let last = shown.saturating_sub(1);
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Esc if self.detail => self.detail = false,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('?' | 'h') => self.help = !self.help,
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Enter | KeyCode::Char('d') => self.detail = !self.detail,
            KeyCode::Char('/') => {
                self.editing_filter = true;
                self.filter.clear();
            }
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('r') => self.reversed = !self.reversed,
            KeyCode::Char('n') => self.sort = SortKey::Host,
            KeyCode::Char('c') => self.sort = SortKey::Cpu,
            KeyCode::Char('m') => self.sort = SortKey::Memory,
            KeyCode::Char('u') => self.sort = SortKey::GpuUtilization,
            KeyCode::Char('t') => self.sort = SortKey::GpuTemperature,
            KeyCode::Char('p') => self.sort = SortKey::PingLoss,
            _ => {}
        }
        self.selected = self.selected.min(last);
    }
}

/// The keys, for the help pane.
pub const KEYS: [(&str, &str); 12] = [
    ("↑ ↓  j k", "select a host (PgUp PgDn Home End too)"),
    ("Enter  d", "open or close the selected host's details"),
    (
        "/",
        "filter hosts by name or GPU model (Enter keeps, Esc clears)",
    ),
    ("s", "next sort order"),
    ("n c m", "sort by host name, CPU, memory"),
    (
        "u t p",
        "sort by GPU utilisation, GPU temperature, ping loss",
    ),
    ("r", "reverse the order"),
    ("Esc", "close a pane, or clear the filter"),
    ("? h", "show or hide this help"),
    ("q  Ctrl-C", "quit"),
    (
        "",
        "xid N (L): N XID errors since the exporter started, the last one XID L",
    ),
    ("", "rates are per second, from the last two answers"),
];

/// Whether a host's name or one of its GPUs' models contains `filter` (lower case).
fn matches(host: &Host, filter: &str) -> bool {
    host.name.to_lowercase().contains(filter) || host.reading().has_gpu_model(filter)
}

/// `gpu2` before `gpu10`: runs of digits compare as numbers.
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, nb) = (
                    a[..da].trim_start_matches('0'),
                    b[..db].trim_start_matches('0'),
                );
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode, shown: usize) {
        app.key(KeyEvent::new(code, KeyModifiers::NONE), shown);
    }

    fn fleet(names: &[&str]) -> Fleet {
        Fleet::named(names)
    }

    #[test]
    fn host_names_sort_naturally_and_reverse() {
        let fleet = fleet(&["gpu10", "gpu2", "cpu1"]);
        let mut app = App::default();
        let names = |app: &App| -> Vec<String> {
            app.visible(&fleet)
                .into_iter()
                .map(|i| fleet.hosts[i].name.clone())
                .collect()
        };
        assert_eq!(names(&app), ["cpu1", "gpu2", "gpu10"]);
        press(&mut app, KeyCode::Char('r'), 3);
        assert_eq!(names(&app), ["gpu10", "gpu2", "cpu1"]);
    }

    #[test]
    fn typing_a_filter_narrows_the_list_and_esc_clears_it() {
        let fleet = fleet(&["gpu1", "gpu2", "db1"]);
        let mut app = App::default();
        press(&mut app, KeyCode::Char('/'), 3);
        for c in "GPU".chars() {
            press(&mut app, KeyCode::Char(c), 3);
        }
        press(&mut app, KeyCode::Enter, 3);
        assert_eq!(app.visible(&fleet), [0, 1]);
        assert!(!app.editing_filter);
        // Keys act on the list again: `q` quits rather than joining the filter.
        press(&mut app, KeyCode::Char('j'), 2);
        assert_eq!(app.selected, 1);
        press(&mut app, KeyCode::Char('j'), 2);
        assert_eq!(app.selected, 1);
        press(&mut app, KeyCode::Esc, 2);
        assert_eq!(app.visible(&fleet).len(), 3);
        press(&mut app, KeyCode::Char('q'), 3);
        assert!(app.quit);
    }

    #[test]
    fn esc_closes_help_then_detail() {
        let mut app = App::default();
        press(&mut app, KeyCode::Enter, 1);
        press(&mut app, KeyCode::Char('?'), 1);
        assert!(app.detail && app.help);
        press(&mut app, KeyCode::Esc, 1);
        assert!(app.detail && !app.help);
        press(&mut app, KeyCode::Esc, 1);
        assert!(!app.detail);
    }

    #[test]
    fn sort_keys_cycle_back_to_host() {
        let mut app = App::default();
        for _ in 0..SortKey::ALL.len() {
            press(&mut app, KeyCode::Char('s'), 0);
        }
        assert_eq!(app.sort, SortKey::Host);
        press(&mut app, KeyCode::Char('t'), 0);
        assert_eq!(app.sort, SortKey::GpuTemperature);
    }
}
