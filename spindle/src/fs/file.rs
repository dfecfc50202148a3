//! [`File`] and [`OpenOptions`]: `std::fs::File` with its calls on the
//! blocking pool.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Metadata, Permissions, run};

/// An open file whose reads, writes and other calls run on the blocking
/// pool while the calling coroutine parks; [`std::fs::File`] for
/// coroutines (see the [module docs](super)).
///
/// `Read`, `Write` and `Seek` are implemented for `File` and for `&File`,
/// as in std: the file position lives in the kernel, shared by every
/// handle to the open file (and by [`try_clone`](File::try_clone)s).
/// There is no buffering: `flush` does nothing, and each call is one trip
/// to the pool, so wrap the file in a `BufReader` or `BufWriter` for many
/// small reads or writes.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
///     let path = tmp("file");
///     let mut file = spindle::fs::File::options()
///         .read(true)
///         .write(true)
///         .create(true)
///         .truncate(true)
///         .open(&path)?;
///     file.write_all(b"hello, world")?;
///     file.seek(SeekFrom::Start(7))?;
///     let mut rest = String::new();
///     file.read_to_string(&mut rest)?;
///     assert_eq!(rest, "world");
///     assert_eq!(file.metadata()?.len(), 12);
///     spindle::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    inner: std::fs::File,
}

impl File {
    /// Opens the file at `path` for reading; [`std::fs::File::open`] on the
    /// blocking pool.
    ///
    /// ```
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// let err = spindle::fs::File::open("/no/such/file").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens the file at `path` for writing, creating it if need be and
    /// truncating it otherwise; [`std::fs::File::create`] on the blocking
    /// pool.
    ///
    /// ```
    /// use std::io::Write;
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("create");
    /// let mut file = spindle::fs::File::create(&path)?;
    /// file.write_all(b"created")?;
    /// assert_eq!(spindle::fs::read(&path)?, b"created");
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Creates a new file at `path` for reading and writing, failing with
    /// `AlreadyExists` if there is one (atomically: no other process can
    /// slip a file in between); [`std::fs::File::create_new`] on the
    /// blocking pool.
    ///
    /// ```
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("create-new");
    /// let _lock = spindle::fs::File::create_new(&path)?;
    /// let err = spindle::fs::File::create_new(&path).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// New [`OpenOptions`], all off: the general way to open a file.
    ///
    /// ```
    /// use std::io::Write;
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("options");
    /// let mut log = spindle::fs::File::options().append(true).create(true).open(&path)?;
    /// writeln!(log, "started")?;
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Flushes the file's data and metadata to the device (`fsync`);
    /// [`std::fs::File::sync_all`] on the blocking pool.
    ///
    /// ```
    /// use std::io::Write;
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("sync-all");
    /// let mut file = spindle::fs::File::create(&path)?;
    /// file.write_all(b"durable")?;
    /// file.sync_all()?; // on disk when this returns
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        let inner = &self.inner;
        run(|| inner.sync_all())
    }

    /// Flushes the file's data to the device, and only the metadata needed
    /// to read it back (`fdatasync`); [`std::fs::File::sync_data`] on the
    /// blocking pool.
    ///
    /// ```
    /// use std::io::Write;
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("sync-data");
    /// let mut file = spindle::fs::File::create(&path)?;
    /// file.write_all(b"record")?;
    /// file.sync_data()?;
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        let inner = &self.inner;
        run(|| inner.sync_data())
    }

    /// Truncates or extends (with zeros) the file to `size` bytes; the
    /// position does not change. [`std::fs::File::set_len`] on the
    /// blocking pool.
    ///
    /// ```
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("set-len");
    /// let file = spindle::fs::File::create(&path)?;
    /// file.set_len(4096)?;
    /// assert_eq!(file.metadata()?.len(), 4096);
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        let inner = &self.inner;
        run(|| inner.set_len(size))
    }

    /// The open file's metadata; [`std::fs::File::metadata`] on the
    /// blocking pool.
    ///
    /// ```
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("file-metadata");
    /// # spindle::fs::write(&path, "abc")?;
    /// let file = spindle::fs::File::open(&path)?;
    /// assert_eq!(file.metadata()?.len(), 3);
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        let inner = &self.inner;
        run(|| inner.metadata())
    }

    /// A new handle to the same open file (`dup`): it shares the position
    /// and the flags. [`std::fs::File::try_clone`] on the blocking pool.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("try-clone");
    /// # spindle::fs::write(&path, "abcdef")?;
    /// let mut a = spindle::fs::File::open(&path)?;
    /// let mut b = a.try_clone()?;
    /// let mut buf = [0; 3];
    /// a.read_exact(&mut buf)?;
    /// b.read_exact(&mut buf)?; // goes on where `a` stopped
    /// assert_eq!(&buf, b"def");
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        let inner = &self.inner;
        run(|| inner.try_clone()).map(File::from_std)
    }

    /// Sets the file's permissions; [`std::fs::File::set_permissions`] on
    /// the blocking pool.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("file-set-permissions");
    /// let file = spindle::fs::File::create(&path)?;
    /// file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
    /// assert_eq!(file.metadata()?.permissions().mode() & 0o777, 0o640);
    /// # spindle::fs::remove_file(&path)
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        let inner = &self.inner;
        run(|| inner.set_permissions(perm))
    }

    /// Wraps an [`std::fs::File`] (no system call).
    ///
    /// ```
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("from-std");
    /// let std_file = std::fs::File::create(&path)?;
    /// let file = spindle::fs::File::from_std(std_file);
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File { inner: file }
    }

    /// The [`std::fs::File`] inside (no system call): its calls block the
    /// calling thread.
    ///
    /// ```
    /// # let pid = std::process::id();
    /// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
    /// # let path = tmp("into-std");
    /// let file = spindle::fs::File::create(&path)?;
    /// let std_file: std::fs::File = file.into_std();
    /// assert!(std_file.metadata()?.is_file());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> std::fs::File {
        self.inner
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> File {
        File::from_std(file)
    }
}

impl From<File> for std::fs::File {
    fn from(file: File) -> std::fs::File {
        file.into_std()
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File::from_std(fd.into())
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        file.inner.into()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.inner.into_raw_fd()
    }
}

impl FromRawFd for File {
    /// # Safety
    ///
    /// As for [`std::fs::File::from_raw_fd`]: `fd` is open and owned by
    /// the caller, who gives up that ownership.
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: the caller's guarantee, passed on unchanged.
        File::from_std(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

/// `Read` for `&File` (and so, below, for `File`): each method is one trip
/// to the pool, with the caller's buffer used in place.
impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).read_vectored(bufs))
    }

    /// The whole rest of the file in one trip (std sizes the buffer from
    /// the file's length).
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).read_to_end(buf))
    }

    /// As `read_to_end`, in one trip.
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).read_to_string(buf))
    }

    /// In one trip, however many reads it takes.
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let inner = &self.inner;
        run(|| (&*inner).read_exact(buf))
    }
}

/// `Write` for `&File` (and so, below, for `File`): each method is one
/// trip to the pool, with the caller's buffer used in place.
impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let inner = &self.inner;
        run(|| (&*inner).write_vectored(bufs))
    }

    /// In one trip, however many writes it takes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let inner = &self.inner;
        run(|| (&*inner).write_all(buf))
    }

    /// Nothing to do: a `File` has no buffer (see
    /// [`sync_all`](File::sync_all) to reach the disk).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Seek` for `&File` (and so, below, for `File`): one trip to the pool.
impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let inner = &self.inner;
        run(|| (&*inner).seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        (&*self).read_exact(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

/// Options for opening a file, shaped like [`std::fs::OpenOptions`] (and
/// wrapping one); [`open`](OpenOptions::open) runs on the blocking pool.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::fs::OpenOptionsExt;
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
/// # let pid = std::process::id();
/// # let tmp = |name: &str| std::env::temp_dir().join(format!("spindle-doc-{name}-{pid}"));
///     let path = tmp("open-options");
///     let mut file = spindle::fs::OpenOptions::new()
///         .write(true)
///         .create_new(true)
///         .mode(0o600)
///         .open(&path)?;
///     file.write_all(b"secret")?;
///     spindle::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    inner: std::fs::OpenOptions,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Options with everything off (set at least one of read, write or
    /// append before opening).
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: std::fs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.inner.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.inner.write(write);
        self
    }

    /// Open for appending: every write goes to the end (implies write).
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.inner.append(append);
        self
    }

    /// Truncate an existing file to length 0 (needs write).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.inner.truncate(truncate);
        self
    }

    /// Create the file if it does not exist (needs write or append).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.inner.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists
    /// (atomically); `create` and `truncate` are then ignored.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.inner.create_new(create_new);
        self
    }

    /// Opens the file at `path` with these options;
    /// [`std::fs::OpenOptions::open`] on the blocking pool.
    ///
    /// # Errors
    ///
    /// As [`std::fs::OpenOptions::open`] (`NotFound`, `PermissionDenied`,
    /// `AlreadyExists` with `create_new`, `InvalidInput` for contradictory
    /// options, ...), and the pool's refusals (see the
    /// [module docs](super)).
    ///
    /// ```
    /// # let rt = spindle::Runtime::builder().workers(1).build()?;
    /// # rt.block_on(|| -> std::io::Result<()> {
    /// let err = spindle::fs::OpenOptions::new().read(true).open("/no/such/file").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let (options, path) = (&self.inner, path.as_ref());
        run(|| options.open(path)).map(File::from_std)
    }
}

impl OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.inner.mode(mode);
        self
    }

    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.inner.custom_flags(flags);
        self
    }
}
