//! Where exposition text comes from: an `http(s)://` URL, a file, or `-` for standard input.

use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use kiln_scraper::{Fetch, Format, ScrapeClient};

/// Exposition text and its format.
#[derive(Debug, Clone)]
pub struct Text {
    pub body: String,
    pub format: Format,
    /// The URL or path, for messages.
    pub origin: String,
}

/// What the scrape asks for: OpenMetrics if the target offers it, else the text format.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// Largest exposition read from a file or standard input: as much as the scrape client
/// accepts over HTTP.
const MAX_BODY_BYTES: u64 = 64 << 20;

/// Fetches `location` (a URL) or reads it (a path, or `-` for standard input).
pub async fn load(location: &str, timeout: Duration) -> Result<Text> {
    if location.starts_with("http://") || location.starts_with("https://") {
        let client = ScrapeClient::new()?.timeout(timeout);
        let scrape = client
            .fetch(Fetch::get(location, ACCEPT))
            .await
            .with_context(|| format!("cannot scrape {location}"))?;
        return Ok(Text {
            format: scrape.format(),
            body: scrape.body,
            origin: location.to_owned(),
        });
    }
    let body = if location == "-" {
        let mut body = String::new();
        std::io::stdin()
            .take(MAX_BODY_BYTES + 1)
            .read_to_string(&mut body)
            .context("cannot read standard input")?;
        if body.len() as u64 > MAX_BODY_BYTES {
            anyhow::bail!("standard input is larger than the limit of 64 MiB");
        }
        body
    } else {
        let bytes = kiln_registry::config::read_capped(location.as_ref(), MAX_BODY_BYTES)
            .with_context(|| format!("cannot read {location}"))?;
        String::from_utf8(bytes).with_context(|| format!("cannot read {location}"))?
    };
    // A file in OpenMetrics ends with `# EOF`.
    let format = if body.trim_end().ends_with("# EOF") {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    Ok(Text {
        body,
        format,
        origin: location.to_owned(),
    })
}
