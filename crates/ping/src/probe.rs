//! `/probe?target=HOST`: an on-demand probe in blackbox_exporter's style, through the same
//! shared sockets. Each request gets fresh echo requests, bounded by the scrape timeout.
//!
//! Query parameters: `target` (required), `count` (requests, 1 to 100, default 1),
//! `interval` (between requests, default 100ms), `size` (payload bytes),
//! `ip_protocol` (`ip4` or `ip6`, default: IPv4 when the name has both).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use kiln_registry::{
    MetricSet, Response, RouteHandler, ScrapeContext, exposition_response, query_pairs, text,
};

use crate::dns::Resolver;
use crate::engine::{Engine, Outcome, ProbeSettings, Target};
use crate::icmp::Family;
use crate::targets::TargetManager;

/// The most requests one probe may send.
const MAX_COUNT: u32 = 100;

/// The shortest interval between a probe's requests.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The most ICMP bytes (payload and headers, all requests) one probe may send: 100 default
/// requests fit many times over, while `count=100&size=65500` (6.5 MB) does not.
const MAX_PROBE_BYTES: usize = 1 << 20;

/// The most ICMP bytes all probes in progress may send together. A probe that would go past
/// it is answered 503 at once, so anyone who can reach `/probe` cannot flood the network or
/// crowd out the configured targets' replies.
const MAX_BYTES_IN_FLIGHT: usize = 4 << 20;

/// ICMP and IP headers counted with each request's payload.
const HEADER_BYTES: usize = 28;

/// A probe request, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    target: String,
    count: u32,
    interval: Duration,
    size: Option<usize>,
    family: Option<Family>,
}

fn parse(query: &str) -> Result<Request, String> {
    let mut request = Request {
        target: String::new(),
        count: 1,
        interval: Duration::from_millis(100),
        size: None,
        family: None,
    };
    for (key, value) in query_pairs(query) {
        match &*key {
            "target" => request.target = value.trim().to_owned(),
            "count" => {
                request.count = value
                    .parse()
                    .ok()
                    .filter(|c| (1..=MAX_COUNT).contains(c))
                    .ok_or_else(|| format!("count must be 1 to {MAX_COUNT}, not {value:?}"))?;
            }
            "interval" => {
                request.interval = kiln_registry::duration::parse_go_duration(&value)?;
                if request.interval < MIN_INTERVAL {
                    return Err(format!(
                        "interval must be at least {}ms, not {value:?}",
                        MIN_INTERVAL.as_millis()
                    ));
                }
            }
            "size" => {
                request.size = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|s| *s <= 65_500)
                        .ok_or_else(|| format!("size must be 0 to 65500, not {value:?}"))?,
                );
            }
            "ip_protocol" => {
                request.family = Some(match &*value {
                    "ip4" | "4" => Family::V4,
                    "ip6" | "6" => Family::V6,
                    _ => return Err(format!("ip_protocol must be ip4 or ip6, not {value:?}")),
                });
            }
            _ => {}
        }
    }
    if request.target.is_empty() {
        return Err("Target parameter is missing".into());
    }
    Ok(request)
}

/// The `/probe` handler.
pub fn handler(
    engine: Arc<Engine>,
    targets: TargetManager,
    resolver: Arc<Resolver>,
    default_size: usize,
) -> RouteHandler {
    // One permit per KiB the probes in progress may send.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_BYTES_IN_FLIGHT >> 10));
    Arc::new(move |parts, context| {
        let (engine, targets, resolver, in_flight) = (
            Arc::clone(&engine),
            targets.clone(),
            Arc::clone(&resolver),
            Arc::clone(&in_flight),
        );
        Box::pin(async move {
            let query = parts.uri.query().unwrap_or_default();
            let request = match parse(query) {
                Ok(request) => request,
                Err(message) => return text(StatusCode::BAD_REQUEST, &format!("{message}\n")),
            };
            let bytes =
                request.count as usize * (request.size.unwrap_or(default_size) + HEADER_BYTES);
            if bytes > MAX_PROBE_BYTES {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "count × (size + {HEADER_BYTES}) is {bytes} bytes; one probe may send at most {MAX_PROBE_BYTES}\n"
                    ),
                );
            }
            let permits = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
            let Ok(_sending) = in_flight.try_acquire_many(permits) else {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many probes in progress; try again later.\n",
                );
            };
            let answer = Answer {
                headers: &parts.headers,
                started: Instant::now(),
            };
            probe(
                engine,
                &targets,
                &resolver,
                request,
                default_size,
                context,
                answer,
            )
            .await
        })
    })
}

async fn probe(
    engine: Arc<Engine>,
    targets: &TargetManager,
    resolver: &Resolver,
    request: Request,
    default_size: usize,
    context: ScrapeContext,
    answer: Answer<'_>,
) -> Response {
    let started = answer.started;
    let allowed = targets.settings().allowed.clone();
    let literal = request.target.parse::<IpAddr>().ok();
    if let Some(list) = &allowed
        && literal.is_none()
        && !list.allows_name(&request.target, None)
        && !list.has_networks()
    {
        return text(
            StatusCode::FORBIDDEN,
            &format!(
                "target {:?} is not allowed by probe.allowed_targets\n",
                request.target
            ),
        );
    }

    let wanted = match request.family {
        Some(family) => {
            let mut wanted = [false, false];
            wanted[family.index()] = true;
            wanted
        }
        None => [true, true],
    };
    let resolved = match literal {
        Some(ip) => Ok(ip),
        None => resolver
            .resolve(&request.target, wanted)
            .await
            .and_then(|found| found[0].or(found[1]).ok_or_else(|| "no address".to_owned())),
    };
    let resolve_time = started.elapsed();
    let mut out = MetricSet::default();
    let ip = match resolved {
        Ok(ip) if request.family.is_some_and(|f| f != Family::of(ip)) => {
            tracing::debug!(target = %request.target, "Address of the wrong family.");
            return answer.finish(out, false);
        }
        Ok(ip) => ip,
        Err(error) => {
            tracing::debug!(target = %request.target, err = %error, "Probe target does not resolve.");
            out.gauge_value(
                "probe_dns_lookup_time_seconds",
                "Returns the time taken for probe dns lookup in seconds",
                resolve_time.as_secs_f64(),
            );
            return answer.finish(out, false);
        }
    };
    if let Some(list) = &allowed
        && !(list.allows_name(&request.target, None) || list.allows_address(ip))
    {
        return text(
            StatusCode::FORBIDDEN,
            &format!(
                "target {:?} ({ip}) is not allowed by probe.allowed_targets\n",
                request.target
            ),
        );
    }

    // Each request gets what is left of the budget once the later ones have been sent.
    let spacing = request.interval * (request.count - 1);
    let remaining = context.remaining().saturating_sub(spacing);
    let settings = ProbeSettings {
        interval: request.interval,
        timeout: remaining
            .min(Duration::from_secs(10))
            .max(Duration::from_millis(1)),
        size: request.size.unwrap_or(default_size),
    };
    let target = Arc::new(Target {
        name: request.target.clone(),
        family: Family::of(ip),
        labels: Vec::new(),
    });
    let deadline = context.deadline();
    let outcomes = tokio::task::spawn_blocking(move || {
        engine.probe_once(target, ip, settings, request.count, deadline)
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_default();

    let rtts: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Reply { rtt, .. } => Some(*rtt),
            _ => None,
        })
        .collect();
    let hop_limit = outcomes.iter().rev().find_map(|o| match o {
        Outcome::Reply { hop_limit, .. } => *hop_limit,
        _ => None,
    });
    out.gauge_value(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        resolve_time.as_secs_f64(),
    );
    out.gauge_value(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        if ip.is_ipv4() { 4.0 } else { 6.0 },
    );
    out.gauge_value(
        "probe_icmp_requests",
        "Echo requests sent by this probe",
        request.count as f64,
    );
    out.gauge_value(
        "probe_icmp_replies",
        "Echo replies received in time by this probe",
        rtts.len() as f64,
    );
    if !rtts.is_empty() {
        let mean = rtts.iter().sum::<f64>() / rtts.len() as f64;
        let duration = out.gauge(
            "probe_icmp_duration_seconds",
            "Duration of icmp request by phase (rtt: mean of the replies)",
        );
        out.sample(
            duration,
            &[("phase", "resolve")],
            resolve_time.as_secs_f64(),
        );
        out.sample(duration, &[("phase", "rtt")], mean);
        let rtt = out.gauge(
            "probe_icmp_rtt_seconds",
            "Fastest and slowest reply of this probe",
        );
        let fastest = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = rtts.iter().copied().fold(0.0, f64::max);
        out.sample(rtt, &[("stat", "min")], fastest);
        out.sample(rtt, &[("stat", "max")], slowest);
    }
    if let Some(hop_limit) = hop_limit {
        out.gauge_value(
            "probe_icmp_reply_hop_limit",
            "Replied packet hop limit (TTL for ipv4)",
            f64::from(hop_limit),
        );
    }
    answer.finish(out, !rtts.is_empty())
}

/// What a probe's answer needs from the request.
struct Answer<'a> {
    headers: &'a HeaderMap,
    started: Instant,
}

impl Answer<'_> {
    /// Adds blackbox_exporter's `probe_duration_seconds` and `probe_success` and answers
    /// in the format the request asks for.
    fn finish(&self, mut out: MetricSet, success: bool) -> Response {
        out.gauge_value(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            self.started.elapsed().as_secs_f64(),
        );
        out.gauge_value(
            "probe_success",
            "Displays whether or not the probe was a success",
            f64::from(u8::from(success)),
        );
        out.seal();
        exposition_response(self.headers, &[&out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_limits() {
        let request = parse("target=10.0.0.1").unwrap();
        assert_eq!(request.count, 1);
        assert_eq!(request.interval, Duration::from_millis(100));
        let request = parse("target=h&count=5&interval=10ms&size=8&ip_protocol=ip6").unwrap();
        assert_eq!(
            (request.count, request.size, request.family),
            (5, Some(8), Some(Family::V6))
        );
        assert!(
            parse("count=2")
                .unwrap_err()
                .contains("Target parameter is missing")
        );
        assert!(parse("target=h&count=0").is_err());
        assert!(parse("target=h&count=101").is_err());
        assert!(parse("target=h&ip_protocol=ipx").is_err());
        assert!(parse("target=h&interval=1ms").is_err());
    }
}
