//! Hadoop's `JMXJsonServlet`: `GET /jmx?qry=<pattern>` answers `{"beans": [{"name": …,
//! "modelerType": …, attributes…}, …]}`. It takes one pattern per request, so each include
//! pattern is one request (none: one request for everything).

use std::time::{Duration, Instant};

use kiln_scraper::{Fetch, ScrapeClient, ScrapeError};

use super::FetchError;
use crate::json::{self, JsonError, Value};
use crate::object_name::ObjectNamePattern;
use crate::walk::{Bean, RawBean};

/// Fetches `base` once per pattern (once in all without patterns) within `timeout`.
pub async fn fetch(
    client: &ScrapeClient,
    base: &str,
    patterns: &[ObjectNamePattern],
    timeout: Duration,
    admit: &(dyn Fn(usize) -> bool + Send + Sync),
) -> Result<Vec<String>, FetchError> {
    let deadline = Instant::now() + timeout;
    let urls: Vec<String> = if patterns.is_empty() {
        vec![base.to_owned()]
    } else {
        patterns
            .iter()
            .map(|p| format!("{base}?qry={}", encode_query(p.as_str())))
            .collect()
    };
    let mut bodies = Vec::with_capacity(urls.len());
    for url in &urls {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ScrapeError::Timeout(timeout).into());
        }
        let answer = client
            .fetch(
                Fetch::get(url, "application/json")
                    .timeout(left)
                    .admit(admit),
            )
            .await?;
        bodies.push(answer.body);
    }
    Ok(bodies)
}

/// Appends the beans of one answer.
pub fn beans<'a>(document: &'a Value<'a>, out: &mut Vec<Bean<'a>>) -> Result<(), FetchError> {
    let Some(Value::Array(items)) = document.get("beans") else {
        return Err(FetchError::Shape(
            "a Hadoop /jmx answer has a \"beans\" array".into(),
        ));
    };
    for item in items {
        let Value::Object(attributes) = item else {
            continue;
        };
        if let Some(name) = item.get("name").and_then(Value::as_str) {
            out.push(Bean { name, attributes });
        }
    }
    Ok(())
}

/// The beans of one answer, each left as its text until it is walked.
pub fn raw_beans<'a>(body: &'a str, out: &mut Vec<RawBean<'a>>) -> Result<(), FetchError> {
    // `{"beans": [bean, …]}`: the beans are two levels down.
    let document = json::parse_shallow(body, 2)?;
    let Some(Value::Array(items)) = document.get("beans") else {
        return Err(FetchError::Shape(
            "a Hadoop /jmx answer has a \"beans\" array".into(),
        ));
    };
    for item in items {
        let Value::Raw(text) = item else {
            continue;
        };
        if let Some(name) = bean_name(text)? {
            out.push(RawBean { name, text });
        }
    }
    Ok(())
}

/// The `name` member of a bean's text, if it is an object with one.
fn bean_name(text: &str) -> Result<Option<std::borrow::Cow<'_, str>>, JsonError> {
    let Value::Object(members) = json::parse_shallow(text, 1)? else {
        return Ok(None);
    };
    // The first `name` member, as `Value::get` finds it.
    Ok(members
        .into_iter()
        .find(|(key, _)| key == "name")
        .and_then(|(_, value)| match value {
            Value::String(name) => Some(name),
            _ => None,
        }))
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
