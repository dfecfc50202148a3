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
    /// [`sync::Mutex::lock`](crate::sync::Mutex::lock).
    Mutex,
    /// [`sync::RwLock::read`](crate::sync::RwLock::read).
    RwLockRead,
    /// [`sync::RwLock::write`](crate::sync::RwLock::write).
    RwLockWrite,
    /// [`sync::Condvar::wait`](crate::sync::Condvar::wait) and its variants.
    Condvar,
    /// [`sync::Semaphore::acquire`](crate::sync::Semaphore::acquire) and its
    /// variants.
    Semaphore,
    /// [`sync::Barrier::wait`](crate::sync::Barrier::wait).
    Barrier,
    /// [`sync::WaitGroup::wait`](crate::sync::WaitGroup::wait).
    WaitGroup,
    /// [`sync::Once`](crate::sync::Once) or
    /// [`sync::OnceLock`](crate::sync::OnceLock): another caller runs the
    /// initialiser.
    Once,
    /// [`sync::Notify::wait`](crate::sync::Notify::wait).
    Notify,
    /// Sending on a full (or rendezvous) [`channel`](crate::channel).
    ChannelSend,
    /// Receiving from an empty [`channel`](crate::channel).
    ChannelRecv,
    /// [`select!`](crate::select!) with no arm ready.
    Select,
    /// Waiting for the [`blocking`](crate::blocking) pool: joining one of
    /// its tasks, [`blocking::run`](crate::blocking::run) and every
    /// [`fs`](crate::fs) call, or waiting for room in a full pool
    /// ([`Rejection::Wait`](crate::blocking::Rejection::Wait)).
    Blocking,
    /// Waiting until a socket is readable.
    IoRead,
    /// Waiting until a socket is writable.
    IoWrite,
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
            WaitReason::Mutex => "mutex",
            WaitReason::RwLockRead => "rwlock_read",
            WaitReason::RwLockWrite => "rwlock_write",
            WaitReason::Condvar => "condvar",
            WaitReason::Semaphore => "semaphore",
            WaitReason::Barrier => "barrier",
            WaitReason::WaitGroup => "wait_group",
            WaitReason::Once => "once",
            WaitReason::Notify => "notify",
            WaitReason::ChannelSend => "chan_send",
            WaitReason::ChannelRecv => "chan_recv",
            WaitReason::Select => "select",
            WaitReason::Blocking => "blocking",
            WaitReason::IoRead => "io_read",
            WaitReason::IoWrite => "io_write",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<WaitReason> {
        Some(match v {
            1 => WaitReason::Park,
            2 => WaitReason::Sleep,
            3 => WaitReason::Join,
            4 => WaitReason::Scope,
            5 => WaitReason::BlockOn,
            6 => WaitReason::Mutex,
            7 => WaitReason::RwLockRead,
            8 => WaitReason::RwLockWrite,
            9 => WaitReason::Condvar,
            10 => WaitReason::Semaphore,
            11 => WaitReason::Barrier,
            12 => WaitReason::WaitGroup,
            13 => WaitReason::Once,
            14 => WaitReason::Notify,
            15 => WaitReason::ChannelSend,
            16 => WaitReason::ChannelRecv,
            17 => WaitReason::Select,
            18 => WaitReason::Blocking,
            19 => WaitReason::IoRead,
            20 => WaitReason::IoWrite,
            _ => return None,
        })
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
