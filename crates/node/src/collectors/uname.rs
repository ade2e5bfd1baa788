//! `uname`: the kernel's identity from `uname(2)`. Dashboards select hosts by its
//! `nodename` label.

use kiln_registry::config::ConfigError;
use kiln_registry::{CollectError, Collector, MetricSet, ScrapeContext};

use super::{Settings, boxed};

pub(super) fn build(_: &Settings) -> Result<Box<dyn Collector>, ConfigError> {
    boxed(Uname)
}

struct Uname;

impl Collector for Uname {
    fn name(&self) -> &str {
        "uname"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut MetricSet) -> Result<(), CollectError> {
        let uname = rustix::system::uname();
        // Borrowed unless a field is not UTF-8.
        let text = std::ffi::CStr::to_string_lossy;
        let (sysname, release, version) = (
            text(uname.sysname()),
            text(uname.release()),
            text(uname.version()),
        );
        let (machine, nodename, domainname) = (
            text(uname.machine()),
            text(uname.nodename()),
            text(uname.domainname()),
        );
        let info = out.gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
        );
        out.sample(
            info,
            &[
                ("sysname", &sysname),
                ("release", &release),
                ("version", &version),
                ("machine", &machine),
                ("nodename", &nodename),
                ("domainname", &domainname),
            ],
            1.0,
        );
        Ok(())
    }
}
