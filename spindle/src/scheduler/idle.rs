//! Which workers sleep and how many search: the idle half of the
//! scheduler (see `README.md`, "searching → sleeping").

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// Counters and the list of sleeping workers.
pub(crate) struct Idle {
    /// Workers looking for work to steal right now.
    searching: AtomicUsize,
    /// Number of entries in `sleepers` (read without the lock).
    sleeping: AtomicUsize,
    /// Indices of sleeping workers that `notify_one` may wake.
    sleepers: Mutex<Vec<usize>>,
    /// At most this many search at once (half the workers, at least one),
    /// as in Go: more searchers burn CPU without finding more work.
    max_searching: usize,
}

impl Idle {
    /// For `workers` regular workers and `slots` worker slots in all
    /// (extra workers included; they do not raise the search limit).
    pub(crate) fn new(workers: usize, slots: usize) -> Idle {
        Idle {
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(slots)),
            max_searching: workers.div_ceil(2).max(1),
        }
    }

    /// Whether `notify_one` should wake someone: nobody is searching and
    /// somebody sleeps. The caller fenced (SeqCst) before.
    pub(crate) fn should_wake(&self) -> bool {
        self.searching.load(Ordering::Relaxed) == 0 && self.sleeping.load(Ordering::Relaxed) > 0
    }

    /// Takes one sleeper, counts it as searching, and sets its word with
    /// `mark` (which stores `NOTIFIED_SEARCHING` and returns the previous
    /// word), all under the sleepers lock: a worker that wakes on its own
    /// meanwhile reads its word and leaves the list under the same lock
    /// (`wake_up`), so it either was taken *and* sees the mark, or was not
    /// taken at all. Returns the worker and its previous word.
    pub(crate) fn pop_sleeper(&self, mark: impl FnOnce(usize) -> u32) -> Option<(usize, u32)> {
        let mut s = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        // Re-check under the lock: another notifier may have won.
        if self.searching.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let i = s.pop()?;
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        self.searching.fetch_add(1, Ordering::SeqCst);
        Some((i, mark(i)))
    }

    /// Tries to become a searcher; fails if enough already search.
    pub(crate) fn try_begin_search(&self) -> bool {
        let mut n = self.searching.load(Ordering::Relaxed);
        loop {
            if n >= self.max_searching {
                return false;
            }
            match self.searching.compare_exchange_weak(
                n,
                n + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(a) => n = a,
            }
        }
    }

    /// Stops searching; returns whether this was the last searcher.
    ///
    /// SeqCst, then the caller re-checks the queues (it is about to sleep,
    /// or found work): pairs with the fence in `Shared::notify_one`.
    pub(crate) fn end_search(&self) -> bool {
        let last = self.searching.fetch_sub(1, Ordering::SeqCst) == 1;
        fence(Ordering::SeqCst);
        last
    }

    /// Registers worker `i` as sleeping (before its final re-check).
    pub(crate) fn add_sleeper(&self, i: usize) {
        let mut s = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        s.push(i);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
    }

    /// Worker `i` woke up: under the sleepers lock, reads and resets its
    /// word with `reset` (which stores `AWAKE` and returns the previous
    /// word) and leaves the list if it is still there. Returns the previous
    /// word: `NOTIFIED_SEARCHING` means `pop_sleeper` took it and counted
    /// it as searching.
    pub(crate) fn wake_up(&self, i: usize, reset: impl FnOnce() -> u32) -> u32 {
        let mut s = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        let word = reset();
        if let Some(pos) = s.iter().position(|&w| w == i) {
            s.swap_remove(pos);
            self.sleeping.fetch_sub(1, Ordering::SeqCst);
        }
        word
    }
}
