//! kiln-scraper: reading what Prometheus exporters serve.
//!
//! - [`parse`] / [`parse_with`]: a strict parser of the text format 0.0.4 (and OpenMetrics
//!   1.0 text) that reports the line and reason of every violation.
//! - [`ScrapeClient`]: an HTTP(S) scrape client with timeouts, gzip, basic auth and TLS.
//! - [`targets`]: static target lists and Prometheus `file_sd` files.
//!
//! ```
//! let text = "# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let exposition = kiln_scraper::parse(text).unwrap();
//! assert_eq!(exposition.value("up", &[("job", "node")]), Some(1.0));
//! ```

#![forbid(unsafe_code)]

mod client;
mod model;
mod parse;
pub mod targets;

pub use client::{Auth, ClientTls, Fetch, Scrape, ScrapeClient, ScrapeError};
pub use model::{Exposition, Family, Format, Label, MetricType, Sample};
pub use parse::{ParseError, Parsed, Violation, parse, parse_with};
