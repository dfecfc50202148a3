//! Why a coroutine is blocked: recorded by every park, read by introspection.

use std::fmt;

/// Why a coroutine is parked. Every blocking call in spindle records a
/// distinct reason, shown by [`runtime::snapshot`](crate::runtime::snapshot)
/// and, in later releases, by `spindle ps` and deadlock reports.
///
/// New reasons are added as subsystems land, so the enum is
/// `#[non_exhaustive]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum WaitReason {
    /// [`park`](crate::park()) or [`park_timeout`](crate::park_timeout) called
    /// directly by user code.
    Park = 1,
    /// [`sleep`](crate::sleep) / [`sleep_until`](crate::sleep_until).
    Sleep,
    /// [`JoinHandle::join`](crate::JoinHandle::join) on an unfinished coroutine.
    Join,
    /// [`scope`](crate::scope) waiting for its coroutines at its end.
    Scope,
    /// [`Runtime::block_on`](crate::Runtime::block_on) called from a coroutine.
    BlockOn,
}

impl WaitReason {
    /// A short lowercase label, as `ps`-style tools print it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Park => "park",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "join",
            WaitReason::Scope => "scope",
            WaitReason::BlockOn => "block_on",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<WaitReason> {
        Some(match v {
            1 => WaitReason::Park,
            2 => WaitReason::Sleep,
            3 => WaitReason::Join,
            4 => WaitReason::Scope,
            5 => WaitReason::BlockOn,
            _ => return None,
        })
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
