//! The process-wide cap on open data files.
//!
//! A torrent's files are opened (and mapped) when a block of them is first read or written,
//! not when the torrent is added, and the whole process keeps at most
//! [`max_open_files`] of them open: past that, the least recently used eighth is closed at
//! once (one sort per many opens), and reopened when used again. So a torrent of 100,000
//! files needs neither 100,000 descriptors (the default soft limit is 1,024) nor 100,000
//! maps (`vm.max_map_count` is 65,530), and many torrents share one budget. libtorrent
//! keeps such a file pool too (`file_pool_size`).
//!
//! The pool knows its members only through [`Pooled`]; what "open" means is theirs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};

/// Files open at once in the whole process unless [`set_max_open_files`] says otherwise.
pub const DEFAULT_MAX_OPEN_FILES: usize = 512;

/// A smaller cap would close files that the same piece needs again at once.
pub const MIN_OPEN_FILES: usize = 8;

static MAX_OPEN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_OPEN_FILES);
/// A logical clock for "least recently used": one tick per [`tick`].
static CLOCK: AtomicU64 = AtomicU64::new(1);
static OPEN: Mutex<Vec<Weak<dyn Pooled>>> = Mutex::new(Vec::new());

/// Something the pool may close.
pub trait Pooled: Send + Sync {
    /// The [`tick`] of its last use.
    fn last_use(&self) -> u64;
    /// Closes it (nothing if it is closed already); its next use opens it again.
    fn close(&self);
}

/// Sets the cap (at least [`MIN_OPEN_FILES`]); files already open beyond it are closed as
/// the next ones open.
pub fn set_max_open_files(n: usize) {
    MAX_OPEN.store(n.max(MIN_OPEN_FILES), Ordering::Relaxed);
}

pub fn max_open_files() -> usize {
    MAX_OPEN.load(Ordering::Relaxed)
}

/// Lowers the cap to a quarter of this process's descriptor limit (`RLIMIT_NOFILE`, soft),
/// leaving the rest for sockets: a daemon started under `ulimit -n 256` keeps at most 64
/// data files open. Called once at start.
pub fn fit_to_descriptor_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let quarter = usize::try_from(lim.rlim_cur / 4).unwrap_or(usize::MAX);
    set_max_open_files(max_open_files().min(quarter));
}

/// A time stamp for [`Pooled::last_use`].
pub fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::Relaxed)
}

fn lock() -> MutexGuard<'static, Vec<Weak<dyn Pooled>>> {
    // A panic elsewhere while holding it leaves a list that is still a valid list.
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records that `item` was just opened, and closes the least recently used members if
/// that makes too many. Called without holding the item's own lock: closing takes the
/// victims' locks, never the pool's and a member's at once.
pub fn opened(item: Weak<dyn Pooled>) {
    let victims = {
        let mut open = lock();
        open.push(item);
        let cap = max_open_files();
        if open.len() <= cap {
            return;
        }
        open.retain(|w| w.strong_count() > 0);
        if open.len() <= cap {
            return;
        }
        let excess = open.len() - cap + cap / 8;
        take_least_recent(&mut open, excess)
    };
    for v in victims {
        if let Some(p) = v.upgrade() {
            p.close();
        }
    }
}

/// Removes the `n` least recently used members from `open` and returns them.
fn take_least_recent(open: &mut Vec<Weak<dyn Pooled>>, n: usize) -> Vec<Weak<dyn Pooled>> {
    let mut ages: Vec<(u64, usize)> = open
        .iter()
        .enumerate()
        .map(|(i, w)| (w.upgrade().map_or(0, |p| p.last_use()), i))
        .collect();
    ages.sort_unstable();
    let mut doomed = vec![false; open.len()];
    for &(_, i) in ages.iter().take(n) {
        doomed[i] = true;
    }
    let mut victims = Vec::with_capacity(n);
    let mut i = 0;
    open.retain(|w| {
        let keep = !doomed[i];
        if !keep {
            victims.push(w.clone());
        }
        i += 1;
        keep
    });
    victims
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    struct Member {
        used: AtomicU64,
        open: AtomicBool,
    }

    impl Pooled for Member {
        fn last_use(&self) -> u64 {
            self.used.load(Ordering::Relaxed)
        }
        fn close(&self) {
            self.open.store(false, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_least_recently_used_are_taken() {
        let members: Vec<Arc<Member>> = (0..10)
            .map(|i| {
                Arc::new(Member {
                    // Used in the order 3, 4, …, 9, 0, 1, 2.
                    used: AtomicU64::new((i + 7) % 10),
                    open: AtomicBool::new(true),
                })
            })
            .collect();
        let mut open: Vec<Weak<dyn Pooled>> = members
            .iter()
            .map(|m| Arc::downgrade(m) as Weak<dyn Pooled>)
            .collect();
        let victims = take_least_recent(&mut open, 3);
        assert_eq!(open.len(), 7);
        for v in victims {
            v.upgrade().unwrap().close();
        }
        let closed: Vec<usize> = (0..10)
            .filter(|&i| !members[i].open.load(Ordering::Relaxed))
            .collect();
        assert_eq!(closed, vec![3, 4, 5]);
    }
}
