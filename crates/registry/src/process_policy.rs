//! The settings every Kiln process runs with (the allocator's, the open files limit), set
//! once at start by [`crate::bootstrap::main`] (and by `kiln up`, which serves several
//! exporters in one process), before any other thread starts. All unsafe code of this
//! module is the two `mallopt(3)` calls, which no safe crate offers.
#![allow(unsafe_code)]

/// Buffers at least this large are mapped for themselves and unmapped when freed.
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Applies the settings; calling it again changes nothing.
///
/// - **One malloc arena.** Collectors allocate on pool threads and the server frees after
///   encoding; with an arena per thread, each keeps a scrape's worth of freed memory (up to
///   half a MiB resident per thread) for nothing. A few collector threads barely contend for
///   one arena.
/// - **A fixed mmap threshold.** A JMX probe holds a JVM's whole answer and its parse
///   (megabytes for a NameNode) for milliseconds. glibc raises its threshold each time such a
///   buffer is freed, after which they come from the heap and the peak of concurrent probes
///   stays resident (160 MB instead of 25 MB after probing 50 NameNodes, four at a time).
///   A fixed threshold keeps them mapped and returned.
/// - **Open files up to the hard limit.** The soft limit on descriptors (1 024 under most
///   init systems) is kept low for programs that `select(2)`; Kiln does not, and the Go
///   exporters it replaces raise the soft limit to the hard one at start (the Go runtime
///   does it for every program), so a unit's `LimitNOFILE=` means the same for both. The
///   node exporter keeps each YARN container's cgroup files open between scrapes, and the
///   servers hold a connection each.
pub fn apply() {
    raise_open_files_limit();
    #[cfg(target_env = "gnu")]
    for (parameter, value, name) in [
        (libc::M_ARENA_MAX, 1, "M_ARENA_MAX"),
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
    ] {
        // SAFETY: mallopt only sets a tunable of the allocator, under glibc's own lock; the
        // arguments are plain integers and a refused setting is reported by the result.
        let done = unsafe { libc::mallopt(parameter, value) };
        if done != 1 {
            tracing::debug!(
                setting = name,
                "mallopt refused the setting; glibc's default stays."
            );
        }
    }
}

fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // Linux never has an unlimited hard limit on descriptors (it stops at `nr_open`).
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        limit.current = Some(hard);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(err = %error, "Cannot raise the open files limit; it stays.");
        }
    }
}

/// The soft limit on open descriptors, `None` if there is none.
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use rustix::process::{Resource, getrlimit, setrlimit};

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one() {
        // A soft limit below the hard one, as init systems set it.
        let mut lowered = getrlimit(Resource::Nofile);
        lowered.current = Some(256);
        setrlimit(Resource::Nofile, lowered).unwrap();
        super::apply();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum, "{limit:?}");
        assert_eq!(super::open_files_limit(), limit.current);
    }
}
