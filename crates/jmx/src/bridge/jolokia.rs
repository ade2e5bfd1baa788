//! Jolokia: one bulk `POST` with a `read` per include pattern (or of `*:*`), answered by an
//! array of responses in the same order.
//!
//! Processing parameters on the URL apply to every read: `ignoreErrors` (one unreadable
//! attribute must not fail a whole pattern read), `canonicalNaming=false` (property order as
//! registered, which jmx_exporter's names depend on; Jolokia defaulted to sorted names until
//! 2.5), and `includeRequest=false` (Jolokia 2.1+; older agents ignore it).

use std::time::Duration;

use bytes::Bytes;
use kiln_scraper::{Fetch, ScrapeClient};

use super::FetchError;
use crate::json::{self, Value};
use crate::object_name::ObjectNamePattern;
use crate::walk::{Bean, RawBean};

const PARAMETERS: &str =
    "ignoreErrors=true&canonicalNaming=false&includeRequest=false&mimeType=application%2Fjson";

/// The MBean names or patterns read, in request order.
pub fn requested(patterns: &[ObjectNamePattern]) -> Vec<&str> {
    if patterns.is_empty() {
        vec!["*:*"]
    } else {
        patterns.iter().map(ObjectNamePattern::as_str).collect()
    }
}

/// The bulk read body for `patterns` (all MBeans without patterns).
pub fn request_body(patterns: &[ObjectNamePattern]) -> String {
    let names = requested(patterns);
    let reads: Vec<serde_json::Value> = names
        .iter()
        .map(|name| serde_json::json!({"type": "read", "mbean": name}))
        .collect();
    serde_json::Value::Array(reads).to_string()
}

/// Sends the bulk read.
pub async fn fetch(
    client: &ScrapeClient,
    base: &str,
    patterns: &[ObjectNamePattern],
    timeout: Duration,
    admit: &(dyn Fn(usize) -> bool + Send + Sync),
) -> Result<String, FetchError> {
    let url = format!("{}/?{PARAMETERS}", base.trim_end_matches('/'));
    let body = Bytes::from(request_body(patterns));
    let answer = client
        .fetch(
            Fetch::post(&url, "application/json", "application/json", body)
                .timeout(timeout)
                .admit(admit),
        )
        .await?;
    Ok(answer.body)
}

/// Appends the beans of a bulk answer; returns how many reads failed (404, "no such MBean",
/// is not counted: a pattern may match nothing).
pub fn beans<'a>(
    document: &'a Value<'a>,
    requested: &[&'a str],
    out: &mut Vec<Bean<'a>>,
) -> Result<u64, FetchError> {
    let responses: &[Value<'a>] = match document {
        Value::Array(items) => items,
        // A lone request is answered by a lone response.
        Value::Object(_) => std::slice::from_ref(document),
        _ => {
            return Err(FetchError::Shape(
                "a Jolokia answer is an object or array".into(),
            ));
        }
    };
    let mut errors = 0;
    for (index, response) in responses.iter().enumerate() {
        if !succeeded(response, &mut errors)? {
            continue;
        }
        let Some(Value::Object(by_name)) = response.get("value") else {
            continue;
        };
        // A read of one exact name answers with that bean's attributes directly.
        if let Some(name) = requested.get(index).filter(|n| !n.contains(['*', '?'])) {
            out.push(Bean {
                name,
                attributes: by_name,
            });
            continue;
        }
        for (name, attributes) in by_name {
            if let Value::Object(attributes) = attributes {
                out.push(Bean { name, attributes });
            }
        }
    }
    Ok(errors)
}

/// [`beans`] with each bean left as its text until it is walked.
pub fn raw_beans<'a>(
    body: &'a str,
    requested: &[&'a str],
    out: &mut Vec<RawBean<'a>>,
) -> Result<u64, FetchError> {
    // Each response's `value` is left as text: an array of responses holds them two levels
    // down, a lone response one.
    let lone = body.trim_start().starts_with('{');
    let document = json::parse_shallow(body, if lone { 1 } else { 2 })?;
    let responses: &[Value<'a>] = match &document {
        Value::Array(items) => items,
        Value::Object(_) => std::slice::from_ref(&document),
        _ => {
            return Err(FetchError::Shape(
                "a Jolokia answer is an object or array".into(),
            ));
        }
    };
    let mut errors = 0;
    for (index, response) in responses.iter().enumerate() {
        let Some(text) = read_value(response, &mut errors)? else {
            continue;
        };
        if let Some(name) = requested.get(index).filter(|n| !n.contains(['*', '?'])) {
            out.push(RawBean {
                name: (*name).into(),
                text,
            });
            continue;
        }
        let Value::Object(by_name) = json::parse_shallow(text, 1)? else {
            continue;
        };
        for (name, attributes) in by_name {
            if let Value::Raw(text) = attributes
                && text.starts_with('{')
            {
                out.push(RawBean { name, text });
            }
        }
    }
    Ok(errors)
}

/// The text of a successful response's `value` object; failed reads other than 404 are
/// counted in `errors`.
fn read_value<'a>(response: &Value<'a>, errors: &mut u64) -> Result<Option<&'a str>, FetchError> {
    if !succeeded(response, errors)? {
        return Ok(None);
    }
    Ok(match response.get("value") {
        Some(Value::Raw(text)) if text.starts_with('{') => Some(text),
        _ => None,
    })
}

/// Whether a response read its beans: 200 does, 404 ("no such MBean": a pattern may match
/// nothing) does not and is no error, any other status is counted in `errors`.
fn succeeded(response: &Value<'_>, errors: &mut u64) -> Result<bool, FetchError> {
    let status = match response.get("status") {
        Some(Value::Number(status)) => *status,
        _ => {
            return Err(FetchError::Shape(
                "a Jolokia response carries a status".into(),
            ));
        }
    };
    match status {
        "200" => Ok(true),
        "404" => Ok(false),
        _ => {
            let error = response.get("error").and_then(Value::as_str).unwrap_or("");
            tracing::debug!(status, error, "Jolokia read failed.");
            *errors += 1;
            Ok(false)
        }
    }
}
