//! Surviving a mapped file that shrinks behind our back.
//!
//! Reading a page of a map past the end of its file (someone truncated a file we seed, or the
//! disk under it went away) raises SIGBUS, which kills the process — whoever can write the
//! user's files could stop the client. Our handler puts a page of zeros over the faulting page
//! and lets the read go on, and counts the fault. The storage looks at the count on its next
//! read: once it moved, it checks its files' sizes, and a block that lies past the end of its
//! file is an error value (that request is refused) instead of a crash. The zeros that were
//! read in the meantime fail the peer's hash check, as any bad block does; nothing stored is
//! touched (the page is private and anonymous).
//!
//! Only `BUS_ADRERR` faults are handled (an address past the end of a mapped object); any
//! other SIGBUS gets the default action.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static FAULTS: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// How many faults the handler has turned into zero pages so far.
pub fn faults() -> u64 {
    FAULTS.load(Ordering::Acquire)
}

/// Installs the handler (once per process); called before the first map is made.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with a zeroed struct, our handler and an empty mask; the handler
        // only makes async-signal-safe system calls and touches an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0 {
                tracing::warn!(
                    "cannot install the SIGBUS handler: a truncated seed file may stop the process"
                );
            }
        }
    });
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo for SA_SIGINFO handlers; mmap and sigaction
    // are plain system calls.
    unsafe {
        let code = (*info).si_code;
        let addr = (*info).si_addr() as usize;
        let page = page_size();
        if code == libc::BUS_ADRERR && addr != 0 && page != 0 {
            let start = (addr & !(page - 1)) as *mut libc::c_void;
            let r = libc::mmap(
                start,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            if r != libc::MAP_FAILED {
                FAULTS.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
        // Not ours to mend: the default action (the access faults again and ends the process).
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf is async-signal-safe and has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_read_past_a_truncated_file_reads_zeros_and_is_counted() {
        install();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 64 << 10]).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let map = memmap2::MmapOptions::new()
            .len(64 << 10)
            .map_raw_read_only(&f)
            .unwrap();
        // SAFETY: within the map's length.
        let at = |off: usize| unsafe { std::ptr::read_volatile(map.as_ptr().add(off)) };
        assert_eq!(at(40 << 10), 7);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let before = faults();
        // Without the handler this read kills the test process.
        let _ = at(40 << 10);
        assert!(faults() > before, "the fault was counted");
        assert_eq!(at(40 << 10 | 1), 0, "the page now reads as zeros");
        assert_eq!(at(100), 7, "the part still in the file is untouched");
    }
}
