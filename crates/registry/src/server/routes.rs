//! What each request gets: auth and rate limit first, then the telemetry path, the landing
//! page, health and readiness, reload, and the exporter's own routes.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Method, StatusCode, request::Parts};
use http_body_util::Full;

use super::Shared;
use super::self_metrics::HandlerError;
use crate::collector::ScrapeContext;
use crate::metrics::{Format, LastFamily, MetricSet, encode_part, finish};
use crate::runner::Selection;
use crate::webconfig::{AuthOutcome, WebConfig};

/// Body of every response.
pub type Body = Full<Bytes>;
/// A response.
pub type Response = http::Response<Body>;

/// Assumed scrape timeout when Prometheus does not send one.
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Paths that the rate limit never refuses: a client's burst must not make a liveness or
/// readiness probe fail.
const UNLIMITED_PATHS: &[&str] = &["/-/healthy", "/-/ready"];

pub(super) async fn handle(
    shared: &Shared,
    client: IpAddr,
    request: http::Request<hyper::body::Incoming>,
) -> Result<Response, Infallible> {
    let (parts, _body) = request.into_parts();
    let web = shared.web.current();

    let limited = !UNLIMITED_PATHS.contains(&parts.uri.path());
    let mut response = if limited && web.rate_limit.as_ref().is_some_and(|l| !l.allow(client)) {
        text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
    } else if let Some(refused) = authenticate(&web, &parts).await {
        refused
    } else {
        match tokio::time::timeout(shared.timeouts.request, route(shared, parts)).await {
            Ok(response) => response,
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Request timed out.\n"),
        }
    };
    for (name, value) in &web.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(response)
}

/// `None` when the request may proceed, else the answer that refuses it.
async fn authenticate(web: &WebConfig, parts: &Parts) -> Option<Response> {
    let auth = web.auth.as_ref()?;
    match auth
        .check(parts.headers.get(http::header::AUTHORIZATION))
        .await
    {
        AuthOutcome::Allowed => None,
        AuthOutcome::Denied => {
            let mut denied = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            denied
                .headers_mut()
                .insert(WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic"));
            Some(denied)
        }
        AuthOutcome::Busy => {
            let mut busy = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many credentials are being checked; try again later.\n",
            );
            busy.headers_mut()
                .insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
            Some(busy)
        }
    }
}

async fn route(shared: &Shared, parts: Parts) -> Response {
    let path = parts.uri.path();
    if path == shared.telemetry_path {
        return metrics(shared, &parts).await;
    }
    match path {
        "/" if shared.landing.is_some() => {
            let mut page = Response::new(Full::new(shared.landing.clone().unwrap_or_default()));
            page.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            page
        }
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if shared.ready.as_ref().is_none_or(|ready| ready()) => {
            text(StatusCode::OK, "Ready.\n")
        }
        "/-/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "Not ready.\n"),
        "/-/reload" if shared.lifecycle => reload(shared, &parts.method).await,
        _ => match shared.routes.iter().find(|(p, _)| p == path) {
            Some((_, handler)) => {
                let ctx = scrape_context(requested_timeout(&parts));
                handler(parts, ctx).await
            }
            None => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        },
    }
}

async fn metrics(shared: &Shared, parts: &Parts) -> Response {
    let _slot = match &shared.scrape_slots {
        Some(slots) => match slots.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => {
                shared.observe(503);
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "Limit of concurrent requests reached ({}), try again later.\n",
                        shared.max_requests
                    ),
                );
            }
        },
        None => None,
    };
    let _in_flight = shared.self_metrics.as_ref().map(|m| m.in_flight());

    let selection = match Selection::from_query(parts.uri.query().unwrap_or_default())
        .and_then(|s| shared.runner.validate(&s).map(|()| s))
    {
        Ok(selection) => selection,
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Couldn't create filtered metrics handler: {error}\n"),
            );
        }
    };
    let ctx = scrape_context(requested_timeout(parts));

    let mut collected = shared.runner.collect(ctx, &selection).await;
    if let Some(own) = &shared.self_metrics {
        collected.append(|out| own.write(out));
    }
    let text_source = shared
        .text_source
        .as_ref()
        .filter(|s| selection.includes(s.name()));
    // A text source writes the text format only, so an exporter with one answers in it.
    let format = match text_source {
        Some(_) => Format::Text,
        None => Format::negotiate(
            parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        ),
    };
    let mut body = String::with_capacity(shared.last_size_hint());
    let left_out = collected.encode(format, &mut body);
    log_left_out(&left_out);
    if !left_out.is_empty() {
        shared.handler_error(HandlerError::Encoding);
    }
    if let Some(source) = text_source {
        let mut taken: Vec<String> = collected
            .sets()
            .flat_map(|set| set.families())
            .filter(|f| !f.is_empty())
            .map(|f| f.name().to_owned())
            .collect();
        taken.sort_unstable();
        taken.dedup();
        drop(collected);
        let source = Arc::clone(source);
        // A large store takes tens of milliseconds to write: off the async threads.
        let written = tokio::task::spawn_blocking(move || {
            let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
            source.write_text(&taken, &mut body);
            body
        })
        .await;
        body = match written {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(err = %error, "Writing the exporter's samples failed.");
                shared.handler_error(HandlerError::Gathering);
                shared.observe(500);
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An error has occurred while serving metrics.\n",
                );
            }
        };
    }
    finish(format, &mut body);
    shared.remember_size(body.len());

    let response = body_response(&parts.headers, format, body);
    shared.observe(200);
    response
}

/// Answers a request for metrics with `sets` (each sealed), in the format and the encoding
/// the request's `Accept` and `Accept-Encoding` ask for: for routes such as `/probe` that
/// build their families per request.
pub fn exposition_response(headers: &http::HeaderMap, sets: &[&MetricSet]) -> Response {
    let mut exposition = Exposition::for_request(headers);
    exposition.write(sets, Bound::Unbounded);
    exposition.response(headers)
}

/// An answer to a request for metrics written a few families at a time, for answers too
/// large to hold as one [`MetricSet`] beside their encoding (a `/probe` of a big JVM).
///
/// Each [`Exposition::write`] takes the families after those written before it, so parts
/// come in name order; a part may start with more samples of the family the part before it
/// ended with, which continue that family.
#[derive(Debug)]
pub struct Exposition {
    format: Format,
    body: String,
    left_out: Vec<crate::metrics::LeftOut>,
    last: LastFamily,
}

impl Exposition {
    /// An empty exposition in the format the request's `Accept` header asks for.
    pub fn for_request(headers: &http::HeaderMap) -> Self {
        Self::new(Format::negotiate(
            headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        ))
    }

    /// An empty exposition in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            body: String::new(),
            left_out: Vec::new(),
            last: None,
        }
    }

    /// Writes the families of `sets` (each sealed) whose names come after those already
    /// written, up to `upto` (`Bound::Unbounded`: all of them), merged by name and sorted as
    /// [`crate::metrics::encode`] writes them.
    pub fn write(&mut self, sets: &[&MetricSet], upto: Bound<&str>) {
        let after = self
            .last
            .as_ref()
            .map(|(name, kind)| (name.as_str(), *kind));
        self.last = encode_part(
            sets,
            self.format,
            after,
            upto,
            &mut self.body,
            &mut self.left_out,
        );
    }

    /// The exposition as text, ended as its format requires.
    pub fn finish(mut self) -> String {
        log_left_out(&self.left_out);
        finish(self.format, &mut self.body);
        self.body
    }

    /// The 200 that carries it, compressed if the request accepts gzip.
    pub fn response(self, headers: &http::HeaderMap) -> Response {
        let format = self.format;
        body_response(headers, format, self.finish())
    }
}

/// Logs what the encoder left out: the same data comes back every scrape, so once a minute.
fn log_left_out(left_out: &[crate::metrics::LeftOut]) {
    static LIMITER: crate::LogLimiter = crate::LogLimiter::new(std::time::Duration::from_secs(60));
    if left_out.is_empty() {
        return;
    }
    if let Some(held_back) = LIMITER.check() {
        tracing::error!(
            families = ?left_out,
            held_back,
            "Metric families could not be encoded as written; what could not was left out."
        );
    }
}

/// A 200 with an encoded exposition, gzipped when the client accepts it.
fn body_response(headers: &http::HeaderMap, format: Format, body: String) -> Response {
    let gzip = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip);
    let mut response = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match encoder
            .write_all(body.as_bytes())
            .and_then(|()| encoder.finish())
        {
            Ok(compressed) => {
                let mut r = Response::new(Full::new(Bytes::from(compressed)));
                r.headers_mut()
                    .insert(CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
                r
            }
            Err(_) => Response::new(Full::new(Bytes::from(body))),
        }
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static(format.content_type()),
    );
    response
}

async fn reload(shared: &Shared, method: &Method) -> Response {
    if method != Method::POST && method != Method::PUT {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "This endpoint requires a POST or PUT request.\n",
        );
    }
    match shared.reload_all().await {
        Ok(()) => text(StatusCode::OK, "Reloaded.\n"),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Failed to reload configuration: {error}\n"),
        ),
    }
}

/// The collection budget for a scrape: Prometheus's timeout less a margin for the encoding
/// and the network (a tenth, at most half a second), as blackbox_exporter does.
/// The scrape timeout Prometheus sends with each request, in seconds.
fn requested_timeout(parts: &Parts) -> Option<f64> {
    parts
        .headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
}

pub(crate) fn scrape_context(timeout_seconds: Option<f64>) -> ScrapeContext {
    let timeout = timeout_seconds
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| Duration::from_secs_f64(t.min(3600.0)))
        .unwrap_or(DEFAULT_SCRAPE_TIMEOUT);
    let margin = (timeout / 10).min(Duration::from_millis(500));
    ScrapeContext::with_budget(timeout - margin)
}

/// True when an `Accept-Encoding` value allows gzip (and does not give it `q=0`).
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut pieces = part.split(';').map(str::trim);
        let coding = pieces.next().unwrap_or_default();
        let refused = pieces.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricType;

    /// A set of `samples` samples of `name`, labelled `i="0"`, `i="1"`, … from `first`.
    fn family(name: &str, first: usize, samples: usize) -> MetricSet {
        let mut set = MetricSet::default();
        let id = set.family(name, "Help.", MetricType::Gauge);
        for i in first..first + samples {
            set.sample(id, &[("i", &i.to_string())], i as f64);
        }
        set.seal();
        set
    }

    #[test]
    fn an_exposition_written_in_parts_equals_one_written_whole() {
        let others = family("b_between", 0, 2);
        let last = family("z_last", 0, 1);
        let mut whole = family("a_first", 0, 5);
        whole.append(&family("c_split", 0, 7));
        whole.append(&others);
        whole.append(&last);
        whole.seal();
        for format in [Format::Text, Format::OpenMetrics] {
            let mut expected = Exposition::new(format);
            expected.write(&[&whole], Bound::Unbounded);

            // `c_split` in three parts, the families of `rest` among them by name.
            let mut rest = others.clone();
            rest.append(&last);
            rest.seal();
            let mut parts = Exposition::new(format);
            parts.write(
                &[&family("a_first", 0, 5), &rest],
                Bound::Included("a_first"),
            );
            parts.write(
                &[&family("c_split", 0, 3), &rest],
                Bound::Included("c_split"),
            );
            parts.write(
                &[&family("c_split", 3, 3), &rest],
                Bound::Included("c_split"),
            );
            parts.write(&[&family("c_split", 6, 1), &rest], Bound::Unbounded);
            let text = parts.finish();
            assert_eq!(text, expected.finish(), "{format:?}");
            assert_eq!(text.matches("# TYPE c_split").count(), 1, "{text}");
        }
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("gzipx"));
    }

    #[test]
    fn scrape_budget_leaves_a_margin() {
        let budget = |t| scrape_context(t).remaining();
        assert!(budget(Some(10.0)) <= Duration::from_millis(9500));
        assert!(budget(Some(10.0)) > Duration::from_millis(9000));
        assert!(budget(Some(1.0)) <= Duration::from_millis(900));
        assert!(budget(None) <= Duration::from_millis(9500));
        assert!(budget(Some(-1.0)) > Duration::from_secs(9));
    }
}
