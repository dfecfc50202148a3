//! A cheap monotonic cycle counter for per-coroutine run time.
//!
//! Reading `Instant::now()` around every switch would cost more than the
//! switch itself, so the scheduler charges run time in counter ticks (the
//! TSC on x86_64, the virtual counter on aarch64) and converts them to
//! nanoseconds only when a snapshot is taken, from the ratio of ticks to
//! `Instant` time elapsed since the clock was first read.

use std::sync::OnceLock;
use std::time::Instant;

/// Current counter value in ticks.
#[inline]
pub(crate) fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every
        // x86_64 CPU; it only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: CNTVCT_EL0 is readable from EL0 on Linux (the kernel
        // enables it for the vDSO); reading it has no side effects.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        epoch().0.elapsed().as_nanos() as u64
    }
}

fn epoch() -> &'static (Instant, u64) {
    static EPOCH: OnceLock<(Instant, u64)> = OnceLock::new();
    EPOCH.get_or_init(|| (Instant::now(), ticks()))
}

/// Records the reference point for [`ticks_to_nanos`]; called when a runtime
/// starts so the ratio is measured over the runtime's life.
pub(crate) fn init() {
    let _ = epoch();
}

/// Converts a tick count to nanoseconds using the ratio observed since
/// [`init`]. Coarse for the first milliseconds of a process, exact enough
/// afterwards for run-time accounting.
pub(crate) fn ticks_to_nanos(t: u64) -> u64 {
    let (start, start_ticks) = *epoch();
    let ns = start.elapsed().as_nanos() as f64;
    let dt = ticks().saturating_sub(start_ticks) as f64;
    if dt < 1.0 || ns < 1.0 {
        return t;
    }
    (t as f64 * ns / dt) as u64
}
