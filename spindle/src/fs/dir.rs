//! [`read_dir`]: a directory's entries, read in batches on the pool.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::{FileType, Metadata, run};

/// Entries read per trip to the pool: enough that listing a large
/// directory costs few trips, few enough that a reader that stops early
/// has not read much for nothing (tokio reads 32).
const BATCH: usize = 32;

/// The entries of the directory at `path`; [`std::fs::read_dir`] on the
/// blocking pool.
///
/// Opening the directory is one trip to the pool; the returned [`ReadDir`]
/// then reads 32 entries per trip as it is iterated. As in
/// std, `.` and `..` are skipped and the order is the file system's.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("read-dir");
/// spindle::fs::create_dir_all(&dir)?;
/// spindle::fs::write(dir.join("b.txt"), "")?;
/// spindle::fs::write(dir.join("a.txt"), "")?;
/// let mut names = spindle::fs::read_dir(&dir)?
///     .map(|entry| entry.map(|e| e.file_name()))
///     .collect::<Result<Vec<_>, _>>()?;
/// names.sort();
/// assert_eq!(names, ["a.txt", "b.txt"]);
/// # spindle::fs::remove_dir_all(&dir)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let path = path.as_ref();
    let inner = run(|| std::fs::read_dir(path))?;
    Ok(ReadDir {
        inner: Some(inner),
        buffered: VecDeque::new(),
    })
}

/// An iterator over a directory's entries, from [`read_dir`].
///
/// It reads the directory 32 entries per trip to the blocking pool and
/// hands them out one by one, so a listing costs one trip per 32 entries
/// rather than one per entry, and memory for 32 at most (not the whole
/// directory). Like [`std::fs::ReadDir`], it yields an `Err` for an entry
/// that could not be read; a refusal by the pool (see the
/// [module docs](super)) is such an error too, and the next call to `next`
/// tries again.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("readdir");
/// # spindle::fs::create_dir_all(&dir)?;
/// for i in 0..100 {
///     spindle::fs::write(dir.join(format!("{i}.txt")), "")?;
/// }
/// // Four trips to the pool: 32 + 32 + 32 + 4 entries.
/// assert_eq!(spindle::fs::read_dir(&dir)?.count(), 100);
/// # spindle::fs::remove_dir_all(&dir)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReadDir {
    /// `None` once std's iterator ended.
    inner: Option<std::fs::ReadDir>,
    buffered: VecDeque<io::Result<std::fs::DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        if self.buffered.is_empty() {
            let inner = self.inner.as_mut()?;
            let buffered = &mut self.buffered;
            let refill = run(|| {
                for _ in 0..BATCH {
                    match inner.next() {
                        Some(entry) => buffered.push_back(entry),
                        None => return Ok(true),
                    }
                }
                Ok(false)
            });
            match refill {
                Ok(true) => self.inner = None,
                Ok(false) => {}
                Err(e) => return Some(Err(e)),
            }
        }
        self.buffered
            .pop_front()
            .map(|entry| entry.map(|inner| DirEntry { inner }))
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("buffered", &self.buffered.len())
            .field("done", &self.inner.is_none())
            .finish()
    }
}

/// One entry of a directory, from [`ReadDir`]; [`std::fs::DirEntry`] whose
/// calls that may touch the file system run on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("direntry");
/// # spindle::fs::create_dir_all(&dir)?;
/// spindle::fs::write(dir.join("data.bin"), [0u8; 10])?;
/// for entry in spindle::fs::read_dir(&dir)? {
///     let entry = entry?;
///     assert_eq!(entry.file_name(), "data.bin");
///     assert_eq!(entry.path(), dir.join("data.bin"));
///     assert!(entry.file_type()?.is_file());
///     assert_eq!(entry.metadata()?.len(), 10);
/// }
/// # spindle::fs::remove_dir_all(&dir)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DirEntry {
    inner: std::fs::DirEntry,
}

impl DirEntry {
    /// The entry's full path: the directory given to [`read_dir`] joined
    /// with [`file_name`](DirEntry::file_name). No system call.
    pub fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// The entry's name within its directory. No system call.
    pub fn file_name(&self) -> OsString {
        self.inner.file_name()
    }

    /// The entry's metadata, not following a symbolic link (as
    /// [`std::fs::DirEntry::metadata`]); on the blocking pool.
    pub fn metadata(&self) -> io::Result<Metadata> {
        let inner = &self.inner;
        run(|| inner.metadata())
    }

    /// The entry's file type, not following a symbolic link. Usually known
    /// from the directory read itself; on the blocking pool, since some
    /// file systems need a `stat` for it.
    pub fn file_type(&self) -> io::Result<FileType> {
        let inner = &self.inner;
        run(|| inner.file_type())
    }

    /// The [`std::fs::DirEntry`] inside.
    pub fn into_std(self) -> std::fs::DirEntry {
        self.inner
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.inner.path()).finish()
    }
}
