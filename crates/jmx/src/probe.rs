//! `/probe?target=HOST:PORT&module=NAME`: one JVM read through a module's bridge and rules,
//! in blackbox_exporter's style.
//!
//! A JVM that cannot be read fails the scrape (503), so Prometheus' `up` says so as it does
//! for a jmx_exporter java agent; a module may choose the standalone server's answer instead,
//! 200 with `jmx_scrape_error 1`. Requests that are wrong in themselves are client errors: an
//! unknown module or a malformed target is 400, a target outside `allowed_targets` 403.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use kiln_registry::allow_list::AllowList;
use kiln_registry::{
    Exposition, LogLimiter, MetricSet, Response, RouteHandler, ScrapeContext, query_pairs, text,
};
use kiln_scraper::ScrapeError;

use crate::bridge::{self, FetchError};
use crate::budget::Budget;
use crate::config::OnTargetError;
use crate::families;
use crate::json;
use crate::rules::Naming;
use crate::samples::Rows;
use crate::state::{Jmx, Module};
use crate::target::Target;
use crate::walk::Bean;

/// Time kept back from the scrape timeout for writing the answer.
const MARGIN: Duration = Duration::from_millis(250);

/// The `/probe` handler.
/// `memory_limit` bounds the bytes all probes in progress hold for their answers.
pub fn handler(jmx: Arc<Jmx>, memory_limit: usize) -> RouteHandler {
    let failures = Arc::new(LogLimiter::new(Duration::from_secs(60)));
    let budget = Arc::new(Budget::new(memory_limit));
    Arc::new(move |parts, context| {
        let jmx = Arc::clone(&jmx);
        let failures = Arc::clone(&failures);
        let budget = Arc::clone(&budget);
        Box::pin(async move {
            let query = parts.uri.query().unwrap_or_default();
            let mut read = 0;
            let answer = probe(
                &jmx,
                &budget,
                query,
                &parts.headers,
                context,
                &failures,
                &mut read,
            )
            .await;
            // A large answer's parse leaves freed memory in the allocator's heap: give it
            // back to the system now, not whenever the heap's top happens to be free.
            if read >= RELEASE_AFTER_BYTES {
                tokio::task::spawn_blocking(kiln_registry::heap::release_free_memory);
            }
            answer
        })
    })
}

/// Answers at least this large are followed by a release of free memory.
const RELEASE_AFTER_BYTES: usize = 16 << 20;

/// The 503 of a probe past the memory budget.
fn over_budget(jmx: &Jmx, module: &str) -> Response {
    jmx.counters.probe_failed(module, "over_budget");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many large answers are being read; try again later.\n",
    )
}

/// One probe; `read` is set to the bytes of the JVM's answer.
async fn probe(
    jmx: &Jmx,
    budget: &Budget,
    query: &str,
    headers: &HeaderMap,
    context: ScrapeContext,
    failures: &LogLimiter,
    read: &mut usize,
) -> Response {
    let mut target = None;
    let mut module_name = None;
    for (key, value) in query_pairs(query) {
        match &*key {
            "target" => target = Some(value.into_owned()),
            "module" => module_name = Some(value.into_owned()),
            _ => {}
        }
    }
    let modules = jmx.modules.load_full();
    let module_name = match module_name {
        Some(name) => name,
        None if modules.by_name.len() == 1 => {
            modules.by_name.keys().next().cloned().unwrap_or_default()
        }
        None => {
            return bad_request(&format!(
                "module parameter is missing; modules: {}",
                list(&modules.by_name)
            ));
        }
    };
    let Some(module) = modules.by_name.get(&module_name).cloned() else {
        return bad_request(&format!(
            "unknown module {module_name:?}; modules: {}",
            list(&modules.by_name)
        ));
    };
    let target = match (target, &modules.default_target) {
        (Some(target), _) => match Target::parse(&target) {
            Ok(target) => target,
            Err(message) => return bad_request(&format!("target {target:?}: {message}")),
        },
        (None, Some(target)) => target.clone(),
        (None, None) => return bad_request("target parameter is missing"),
    };
    if let Some(allowed) = &modules.allowed
        && !allowed_target(allowed, &target).await
    {
        return text(
            StatusCode::FORBIDDEN,
            &format!("target {target} is not in allowed_targets\n"),
        );
    }

    let Some(reservation) = budget.start() else {
        return over_budget(jmx, &module_name);
    };
    let admit = |bytes: usize| reservation.admit(bytes);
    let started = Instant::now();
    let timeout = module
        .settings
        .timeout
        .min(context.remaining().saturating_sub(MARGIN))
        .max(Duration::from_millis(100));
    let fetched = bridge::fetch(&module.settings, &module.client, &target, timeout, &admit).await;
    let walked = match fetched {
        Err(FetchError::Http(ScrapeError::Refused)) => return over_budget(jmx, &module_name),
        Ok(bodies) => {
            *read = bodies.iter().map(String::len).sum();
            let module = Arc::clone(&module);
            tokio::task::spawn_blocking(move || walk(&module, bodies))
                .await
                .unwrap_or_else(|_| Err(FetchError::Shape("evaluation failed".into())))
        }
        Err(error) => Err(error),
    };
    let (samples, mut others, outcome) = match walked {
        Ok(walked) => {
            jmx.counters.read_errors(&module_name, walked.read_errors);
            let cached = walked.stats.cached_rule_matches;
            (
                walked.samples,
                walked.jvm,
                Ok((walked.stats, walked.reserved, cached)),
            )
        }
        Err(error) => {
            jmx.counters.probe_failed(&module_name, error.reason());
            if let Some(suppressed) = failures.check() {
                tracing::warn!(module = %module_name, target = %target, err = %error, suppressed, "Probe failed.");
            }
            if module.settings.on_target_error == OnTargetError::FailScrape {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("cannot read {target} (module {module_name}): {error}\n"),
                );
            }
            (Rows::default(), MetricSet::default(), Err(()))
        }
    };
    let cached = outcome.as_ref().map_or(0, |(_, _, cached)| *cached);
    self_samples(&mut others, started.elapsed(), outcome.is_err(), cached);
    others.seal();
    let mut headers = headers.clone();
    let naming = module.settings.rules.naming;
    if naming == Naming::V0 {
        // jmx_exporter 0.x names counters as its rules write them, with or without `_total`;
        // OpenMetrics would add the suffix where it is missing, so 0.x naming answers in the
        // text format, where every name is exactly 0.x's.
        headers.remove(http::header::ACCEPT);
    }
    // Encoding a large answer takes milliseconds: off the async threads. The samples go
    // as their families are written, before the answer is compressed.
    let written = tokio::task::spawn_blocking(move || {
        let mut exposition = Exposition::for_request(&headers);
        let mut dropped = families::write(samples, naming, &others, &mut exposition);
        module.cache.sweep_strings();
        dropped.reserved_names += outcome.as_ref().map_or(0, |(_, reserved, _)| *reserved);
        (exposition.response(&headers), dropped)
    })
    .await;
    match written {
        Ok((response, dropped)) => {
            if let Ok((stats, _, _)) = &outcome {
                jmx.counters.probe_succeeded(&module_name, stats, &dropped);
            }
            response
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An error has occurred while writing the answer.\n",
        ),
    }
}

/// What the walk of one answer produced.
struct Walked {
    samples: Rows,
    /// The JVM families, when the module writes them.
    jvm: MetricSet,
    stats: crate::walk::WalkStats,
    /// JVM samples left out for a name the rules' families took.
    reserved: u64,
    read_errors: u64,
}

/// Parses the bodies and walks the beans through the rules, and writes the JVM families.
///
/// Memory: the bodies are read whole once, to check them and find each bean's text; a bean
/// is then parsed only while it is walked, so the parse of a large answer never exists at
/// once. The bodies are dropped before the families are written.
fn walk(module: &Module, bodies: Vec<String>) -> Result<Walked, FetchError> {
    let (samples, stats, read_errors, jvm_beans) = {
        let (beans, read_errors) = bridge::raw_beans(&module.settings, &bodies)?;
        let (samples, stats) = module.cache.walk(&module.settings.rules, &beans);
        // The JVM families read a handful of `java.lang` beans: their text is kept.
        let jvm_beans: Vec<(String, String)> = if module.settings.jvm_metrics {
            beans
                .iter()
                .filter(|bean| bean.name.starts_with("java.lang:"))
                .map(|bean| (bean.name.to_string(), bean.text.to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        (samples, stats, read_errors, jvm_beans)
    };
    drop(bodies);
    // The pieces walked in parallel are copied together once the answer is gone.
    let samples = samples.into_rows();
    let mut jvm = MetricSet::default();
    let mut reserved = 0;
    if module.settings.jvm_metrics {
        let naming = module.settings.rules.naming;
        let taken: HashSet<String> = families::written_names(&samples, naming)
            .filter(|name| name.starts_with("jvm_") || name.starts_with("process_"))
            .collect();
        let taken = taken.iter().map(String::as_str).collect();
        let documents: Vec<(&str, json::Value<'_>)> = jvm_beans
            .iter()
            .filter_map(|(name, text)| Some((name.as_str(), json::parse(text).ok()?)))
            .collect();
        let beans: Vec<Bean<'_>> = documents
            .iter()
            .filter_map(|(name, value)| match value {
                json::Value::Object(attributes) => Some(Bean { name, attributes }),
                _ => None,
            })
            .collect();
        reserved = crate::jvm::write(&beans, naming, &taken, &mut jvm);
    }
    Ok(Walked {
        samples,
        jvm,
        stats,
        reserved,
        read_errors,
    })
}

/// jmx_exporter's three per-scrape gauges.
fn self_samples(out: &mut MetricSet, duration: Duration, error: bool, cached: u64) {
    for (name, help, value) in [
        (
            "jmx_scrape_duration_seconds",
            "Time this JMX scrape took, in seconds.",
            duration.as_secs_f64(),
        ),
        (
            "jmx_scrape_error",
            "Non-zero if this scrape failed.",
            if error { 1.0 } else { 0.0 },
        ),
        (
            "jmx_scrape_cached_beans",
            "Number of beans with their matching rule cached",
            cached as f64,
        ),
    ] {
        out.gauge_value(name, help, value);
    }
}

/// Whether `allowed_targets` lets the probe reach `target`; a name is checked by what it
/// resolves to when it is not listed itself.
async fn allowed_target(allowed: &AllowList, target: &Target) -> bool {
    if allowed.allows_name(&target.host, Some(target.port)) {
        return true;
    }
    if let Some(address) = target.address() {
        return allowed.allows_address(address);
    }
    if !allowed.has_networks() {
        return false;
    }
    match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            !addresses.is_empty() && addresses.iter().all(|a| allowed.allows_address(a.ip()))
        }
        Err(_) => false,
    }
}

fn bad_request(message: &str) -> Response {
    text(StatusCode::BAD_REQUEST, &format!("{message}\n"))
}

fn list(modules: &std::collections::BTreeMap<String, Arc<Module>>) -> String {
    modules.keys().cloned().collect::<Vec<_>>().join(", ")
}
