//! Giving freed heap memory back to the system.
//!
//! glibc keeps memory that was freed in its arenas for reuse, and returns only what lies at
//! the top of each. After a large release (a sample store emptied by expiry, say) most of
//! it stays resident; `malloc_trim(0)` hands every free page of every arena back, so the
//! process shrinks to what it still uses.

/// Returns the free pages of the allocator's arenas to the kernel; true when some were
/// returned. A no-op (false) where the C library is not glibc.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer and is thread-safe (it locks each arena);
        // it only releases memory the allocator holds as free.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_small_allocations_leave_the_resident_set() {
        fn resident_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                .unwrap()
        }
        // 64 MiB in 16 KiB pieces (below the size glibc maps on its own), filled so the
        // pages are resident, then freed in an order that leaves no free space at the top.
        let mut pieces: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 16 << 10]).collect();
        let keep = pieces.pop();
        let before = resident_kib();
        drop(pieces);
        release_free_memory();
        let after = resident_kib();
        drop(keep);
        assert!(
            before.saturating_sub(after) > 32 << 10,
            "resident {before} KiB before, {after} KiB after"
        );
    }
}
