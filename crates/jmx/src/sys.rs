//! The one call no safe crate offers. All unsafe code of the JMX exporter is here.
#![allow(unsafe_code)]

/// Buffers at least this large are mapped for themselves and unmapped when freed.
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Keeps glibc from holding on to the memory of large, short-lived buffers.
///
/// A probe holds a JVM's whole answer, its parse and its text (megabytes for a NameNode) for
/// a few milliseconds. glibc raises its mmap threshold each time such a buffer is freed, after
/// which they come from the heap and the peak of concurrent probes stays resident (160 MB
/// instead of 25 MB after probing 50 NameNodes, four at a time). A fixed threshold keeps
/// them mapped and returned.
pub(crate) fn return_large_buffers() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets an allocator parameter, under glibc's own arena lock; the
        // arguments are plain integers.
        let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if done != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused; large buffers stay with the heap.");
        }
    }
}
