//! Files and directories, shaped like [`std::fs`], for coroutines.
//!
//! Regular files cannot be waited on with epoll: a read from a slow disk or
//! a network file system blocks its thread, whatever the descriptor's
//! flags. So, as Go and libuv do, each call here runs the matching
//! `std::fs` call on the [blocking pool](crate::blocking) while the calling
//! coroutine parks (recording
//! [`WaitReason::Blocking`](crate::WaitReason::Blocking)); its worker runs
//! other coroutines meanwhile. Called from a plain thread (not a
//! coroutine), each call runs directly on that thread, exactly as
//! `std::fs` would: hopping to the pool would add two thread switches and
//! nothing else.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//!
//! let rt = spindle::Runtime::builder().workers(1).build()?;
//! rt.block_on(|| -> std::io::Result<()> {
//!     let dir = std::env::temp_dir().join(format!("spindle-fs-doc-{}", std::process::id()));
//!     spindle::fs::create_dir_all(&dir)?;
//!     let path = dir.join("notes.txt");
//!
//!     let mut file = spindle::fs::File::create(&path)?;
//!     file.write_all(b"one\ntwo\n")?;
//!     file.sync_all()?;
//!
//!     // Buffer small reads: each call on a `File` is one trip to the pool.
//!     let lines: Vec<String> = BufReader::new(spindle::fs::File::open(&path)?)
//!         .lines()
//!         .collect::<Result<_, _>>()?;
//!     assert_eq!(lines, ["one", "two"]);
//!
//!     spindle::fs::remove_dir_all(&dir)
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Costs and limits
//!
//! - Each call is one trip to the pool and back (some microseconds): wrap
//!   a [`File`] in a `BufReader` or `BufWriter` for many small reads or
//!   writes, and prefer [`read`] and [`write()`] for whole files (one trip).
//! - The pool bounds how many calls run at once (its `max_threads`); past
//!   that they queue, and a full pool applies its
//!   [`Rejection`](crate::blocking::Rejection) policy: under `Error` a call
//!   fails with `io::ErrorKind::WouldBlock`. If the pool cannot start a
//!   thread and has none, calls fail with the OS's error and a message
//!   naming the limits. Errors from the file system keep their
//!   [`io::ErrorKind`] (`NotFound`, `PermissionDenied`, ...), as in std.
//! - A buffer passed to `read` or `write` is used by the pool thread in
//!   place (no copy): the calling coroutine cannot leave the call, nor be
//!   unwound, until the pool thread is done with it. So a runtime shutting
//!   down waits for file calls in progress.
//! - [`read_dir`] reads a directory in batches of entries on the pool,
//!   not one entry per trip; see [`ReadDir`].

mod dir;
mod file;

use std::io;
use std::path::{Path, PathBuf};

pub use dir::{DirEntry, ReadDir, read_dir};
pub use file::{File, OpenOptions};
pub use std::fs::{FileType, Metadata, Permissions};

/// Runs an `std::fs` call the way this module does (see the module docs).
fn run<'env, T: Send + 'env>(f: impl FnOnce() -> io::Result<T> + Send + 'env) -> io::Result<T> {
    crate::blocking::run_io(f)
}

/// Reads the whole file at `path` into a vector; [`std::fs::read`] on the
/// blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let path = tmp("read");
/// spindle::fs::write(&path, [1, 2, 3])?;
/// assert_eq!(spindle::fs::read(&path)?, [1, 2, 3]);
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    run(|| std::fs::read(path))
}

/// Reads the whole file at `path` into a string (it must be UTF-8);
/// [`std::fs::read_to_string`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let path = tmp("read-to-string");
/// spindle::fs::write(&path, "hello")?;
/// assert_eq!(spindle::fs::read_to_string(&path)?, "hello");
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref();
    run(|| std::fs::read_to_string(path))
}

/// Writes `contents` as the whole content of the file at `path`, creating
/// it if need be and truncating it otherwise; [`std::fs::write`] on the
/// blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let path = tmp("write");
/// spindle::fs::write(&path, "first")?;
/// spindle::fs::write(&path, b"second")?; // replaces it
/// assert_eq!(spindle::fs::read_to_string(&path)?, "second");
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let (path, contents) = (path.as_ref(), contents.as_ref());
    run(|| std::fs::write(path, contents))
}

/// Copies the contents and permissions of the file `from` to the file
/// `to` (created or truncated) and returns the bytes copied;
/// [`std::fs::copy`] on the blocking pool (which uses `copy_file_range`
/// where it can: no bytes pass through user space).
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let (from, to) = (tmp("copy-a"), tmp("copy-b"));
/// spindle::fs::write(&from, "data")?;
/// assert_eq!(spindle::fs::copy(&from, &to)?, 4);
/// assert_eq!(spindle::fs::read_to_string(&to)?, "data");
/// # spindle::fs::remove_file(&from)?;
/// # spindle::fs::remove_file(&to)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    run(|| std::fs::copy(from, to))
}

/// Renames `from` to `to`, replacing `to` if it exists (atomically, within
/// one file system); [`std::fs::rename`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let (staged, path) = (tmp("rename-a"), tmp("rename-b"));
/// spindle::fs::write(&staged, "new contents")?;
/// spindle::fs::rename(&staged, &path)?; // readers see the old file or the new one, never half
/// assert!(!spindle::fs::try_exists(&staged)?);
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    run(|| std::fs::rename(from, to))
}

/// Removes a file (or symbolic link); [`std::fs::remove_file`] on the
/// blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let path = tmp("remove-file");
/// spindle::fs::write(&path, "")?;
/// spindle::fs::remove_file(&path)?;
/// let err = spindle::fs::remove_file(&path).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # Ok(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::remove_file(path))
}

/// Removes an empty directory; [`std::fs::remove_dir`] on the blocking
/// pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("remove-dir");
/// spindle::fs::create_dir(&dir)?;
/// spindle::fs::remove_dir(&dir)?;
/// # Ok(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::remove_dir(path))
}

/// Removes a directory and everything in it (without following symbolic
/// links); [`std::fs::remove_dir_all`] on the blocking pool, as one call.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("remove-dir-all");
/// spindle::fs::create_dir_all(dir.join("a/b"))?;
/// spindle::fs::write(dir.join("a/b/c.txt"), "c")?;
/// spindle::fs::remove_dir_all(&dir)?;
/// assert!(!spindle::fs::try_exists(&dir)?);
/// # Ok(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::remove_dir_all(path))
}

/// Creates a directory (its parent must exist); [`std::fs::create_dir`] on
/// the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("create-dir");
/// spindle::fs::create_dir(&dir)?;
/// let err = spindle::fs::create_dir(&dir).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
/// # spindle::fs::remove_dir(&dir)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::create_dir(path))
}

/// Creates a directory and any missing parents (no error if it exists);
/// [`std::fs::create_dir_all`] on the blocking pool, as one call.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let dir = tmp("create-dir-all");
/// spindle::fs::create_dir_all(dir.join("x/y/z"))?;
/// spindle::fs::create_dir_all(dir.join("x/y/z"))?; // already there: fine
/// assert!(spindle::fs::metadata(dir.join("x/y/z"))?.is_dir());
/// # spindle::fs::remove_dir_all(&dir)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::create_dir_all(path))
}

/// The metadata of what `path` names, following symbolic links;
/// [`std::fs::metadata`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let path = tmp("metadata");
/// spindle::fs::write(&path, "12345")?;
/// let meta = spindle::fs::metadata(&path)?;
/// assert!(meta.is_file());
/// assert_eq!(meta.len(), 5);
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref();
    run(|| std::fs::metadata(path))
}

/// The metadata of what `path` names, not following a final symbolic link;
/// [`std::fs::symlink_metadata`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let (target, link) = (tmp("symlink-meta-a"), tmp("symlink-meta-b"));
/// spindle::fs::write(&target, "")?;
/// std::os::unix::fs::symlink(&target, &link)?;
/// assert!(spindle::fs::symlink_metadata(&link)?.file_type().is_symlink());
/// assert!(spindle::fs::metadata(&link)?.is_file());
/// # spindle::fs::remove_file(&link)?;
/// # spindle::fs::remove_file(&target)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref();
    run(|| std::fs::symlink_metadata(path))
}

/// The absolute, normalized path of `path`, with every symbolic link
/// resolved (it must exist); [`std::fs::canonicalize`] on the blocking
/// pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// let tmp = spindle::fs::canonicalize(std::env::temp_dir())?;
/// assert!(tmp.is_absolute());
/// assert_eq!(spindle::fs::canonicalize(tmp.join("."))?, tmp);
/// # Ok(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref();
    run(|| std::fs::canonicalize(path))
}

/// The target of the symbolic link `path`; [`std::fs::read_link`] on the
/// blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let link = tmp("read-link");
/// std::os::unix::fs::symlink("/some/target", &link)?;
/// assert_eq!(spindle::fs::read_link(&link)?, std::path::Path::new("/some/target"));
/// # spindle::fs::remove_file(&link)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_link<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref();
    run(|| std::fs::read_link(path))
}

/// Makes `link` a new name (a hard link) for the file `original`;
/// [`std::fs::hard_link`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// # let (original, link) = (tmp("hard-link-a"), tmp("hard-link-b"));
/// spindle::fs::write(&original, "shared")?;
/// spindle::fs::hard_link(&original, &link)?;
/// spindle::fs::remove_file(&original)?;
/// assert_eq!(spindle::fs::read_to_string(&link)?, "shared"); // the data lives on
/// # spindle::fs::remove_file(&link)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    run(|| std::fs::hard_link(original, link))
}

/// Sets the permissions of what `path` names (following symbolic links);
/// [`std::fs::set_permissions`] on the blocking pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
/// use std::os::unix::fs::PermissionsExt;
/// # let path = tmp("set-permissions");
/// spindle::fs::write(&path, "")?;
/// spindle::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
/// assert_eq!(spindle::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # spindle::fs::remove_file(&path)
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref();
    run(|| std::fs::set_permissions(path, perm))
}

/// Whether `path` names something (following symbolic links): `Ok(false)`
/// if it does not exist (or is a broken link), `Err` if that cannot be
/// told (no permission to look, say); [`std::fs::exists`] on the blocking
/// pool.
///
/// ```
/// # let rt = spindle::Runtime::builder().workers(1).build()?;
/// # rt.block_on(|| -> std::io::Result<()> {
/// assert!(spindle::fs::try_exists(std::env::temp_dir())?);
/// assert!(!spindle::fs::try_exists("/no/such/path/at/all")?);
/// # Ok(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    let path = path.as_ref();
    run(|| std::fs::exists(path))
}
