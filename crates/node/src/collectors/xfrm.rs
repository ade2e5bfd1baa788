//! `xfrm`: IPsec (XFRM) error counters from `/proc/net/xfrm_stat`.

use std::path::PathBuf;

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, MetricType, ScrapeContext};

use super::{Settings, boxed};
use crate::read;

pub(super) fn build(settings: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Xfrm {
        path: settings.paths.proc("net/xfrm_stat"),
    })
}

struct Xfrm {
    path: PathBuf,
}

/// The kernel's counters: its name, the family's name after `node_xfrm_`, and the help.
/// Every family is served, with 0 for a counter the file lacks, as node_exporter does.
const COUNTERS: [(&str, &str, &str); 28] = [
    (
        "XfrmInError",
        "in_error_packets_total",
        "All errors not matched by other",
    ),
    (
        "XfrmInBufferError",
        "in_buffer_error_packets_total",
        "No buffer is left",
    ),
    (
        "XfrmInHdrError",
        "in_hdr_error_packets_total",
        "Header error",
    ),
    (
        "XfrmInNoStates",
        "in_no_states_packets_total",
        "No state is found i.e. Either inbound SPI, address, or IPsec protocol at SA is wrong",
    ),
    (
        "XfrmInStateProtoError",
        "in_state_proto_error_packets_total",
        "Transformation protocol specific error e.g. SA key is wrong",
    ),
    (
        "XfrmInStateModeError",
        "in_state_mode_error_packets_total",
        "Transformation mode specific error",
    ),
    (
        "XfrmInStateSeqError",
        "in_state_seq_error_packets_total",
        "Sequence error i.e. Sequence number is out of window",
    ),
    (
        "XfrmInStateExpired",
        "in_state_expired_packets_total",
        "State is expired",
    ),
    (
        "XfrmInStateMismatch",
        "in_state_mismatch_packets_total",
        "State has mismatch option e.g. UDP encapsulation type is mismatch",
    ),
    (
        "XfrmInStateInvalid",
        "in_state_invalid_packets_total",
        "State is invalid",
    ),
    (
        "XfrmInTmplMismatch",
        "in_tmpl_mismatch_packets_total",
        "No matching template for states e.g. Inbound SAs are correct but SP rule is wrong",
    ),
    (
        "XfrmInNoPols",
        "in_no_pols_packets_total",
        "No policy is found for states e.g. Inbound SAs are correct but no SP is found",
    ),
    (
        "XfrmInPolBlock",
        "in_pol_block_packets_total",
        "Policy discards",
    ),
    (
        "XfrmInPolError",
        "in_pol_error_packets_total",
        "Policy error",
    ),
    (
        "XfrmOutError",
        "out_error_packets_total",
        "All errors which is not matched others",
    ),
    (
        "XfrmOutBundleGenError",
        "out_bundle_gen_error_packets_total",
        "Bundle generation error",
    ),
    (
        "XfrmOutBundleCheckError",
        "out_bundle_check_error_packets_total",
        "Bundle check error",
    ),
    (
        "XfrmOutNoStates",
        "out_no_states_packets_total",
        "No state is found",
    ),
    (
        "XfrmOutStateProtoError",
        "out_state_proto_error_packets_total",
        "Transformation protocol specific error",
    ),
    (
        "XfrmOutStateModeError",
        "out_state_mode_error_packets_total",
        "Transformation mode specific error",
    ),
    (
        "XfrmOutStateSeqError",
        "out_state_seq_error_packets_total",
        "Sequence error i.e. Sequence number overflow",
    ),
    (
        "XfrmOutStateExpired",
        "out_state_expired_packets_total",
        "State is expired",
    ),
    (
        "XfrmOutPolBlock",
        "out_pol_block_packets_total",
        "Policy discards",
    ),
    (
        "XfrmOutPolDead",
        "out_pol_dead_packets_total",
        "Policy is dead",
    ),
    (
        "XfrmOutPolError",
        "out_pol_error_packets_total",
        "Policy error",
    ),
    (
        "XfrmFwdHdrError",
        "fwd_hdr_error_packets_total",
        "Forward routing of a packet is not allowed",
    ),
    (
        "XfrmOutStateInvalid",
        "out_state_invalid_packets_total",
        "State is invalid, perhaps expired",
    ),
    (
        "XfrmAcquireError",
        "acquire_error_packets_total",
        "State hasn’t been fully acquired before use",
    ),
];

/// The counters in [`COUNTERS`]' order, and how many lines were not `name value`.
/// Names the kernel adds later are read past.
fn parse(text: &str) -> ([u64; COUNTERS.len()], usize) {
    let mut values = [0; COUNTERS.len()];
    let mut skipped = 0;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            skipped += usize::from(!line.trim().is_empty());
            continue;
        };
        let Ok(value) = value.parse() else {
            skipped += 1;
            continue;
        };
        if let Some(index) = COUNTERS.iter().position(|(known, ..)| *known == name) {
            values[index] = value;
        }
    }
    (values, skipped)
}

impl Collector for Xfrm {
    fn name(&self) -> &str {
        "xfrm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        // Kernels built without CONFIG_XFRM_STATISTICS have no such file.
        let text = read::file_or_no_data(&self.path)?;
        let (values, skipped) = parse(&text);
        if skipped > 0 {
            tracing::debug!(collector = "xfrm", file = %self.path.display(), skipped, "malformed lines skipped");
        }
        for ((_, name, help), value) in COUNTERS.iter().zip(values) {
            let family = out.family_fmt(
                format_args!("node_xfrm_{name}"),
                format_args!("{help}"),
                MetricType::Counter,
            );
            out.sample(family, &[], value as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_name_with_junk_skipped() {
        let text = "XfrmInError                     1\nXfrmInBufferError 2\nXfrmAcquireError 24532\nXfrmSomethingNew 9\nXfrmOutPolDead x\nbroken\n\n";
        let (values, skipped) = parse(text);
        assert_eq!(values[0], 1);
        assert_eq!(values[1], 2);
        assert_eq!(values[27], 24532);
        assert_eq!(values.iter().sum::<u64>(), 24535);
        assert_eq!(skipped, 2);
    }
}
