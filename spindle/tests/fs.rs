//! `spindle::fs`: each scenario runs from coroutines (runtimes with 1, 2
//! and 4 workers), where every call goes through the blocking pool, and
//! from plain OS threads, where calls run directly (see
//! `common::each_mode`). Each works in its own directory under
//! `std::env::temp_dir()`, removed at the end.
//!
//! Scenarios are re-expressed (not copied) from:
//! - tokio `tokio/tests/fs_file.rs` (`basic_read`, `basic_write`,
//!   `rewind_seek_position`, `set_len`), `fs_dir.rs` (`create_dir`,
//!   `build_dir`, `remove`, `read_inherent`), `fs_link.rs` (`test_hard_link`,
//!   `test_symlink`), `fs_copy.rs` (`copy`, `copy_permissions`) and
//!   `fs_open_options.rs`;
//! - Go `src/os/os_test.go` (`TestReadDir` over many entries,
//!   `TestOpenError`, `TestSeek`, `TestTruncate`, `TestRename`,
//!   `TestHardLink`, `TestSymlink`) and `src/os/fifo_test.go`
//!   (`TestFifoEOF`: opening a FIFO blocks until the other end opens).

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{Mode, each_mode};
use spindle::WaitReason;
use spindle::fs::{self, File, OpenOptions};
use spindle::runtime::CoroutineState;

/// A hang fails the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// A directory of its own under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spindle-fs-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TempDir(dir)
    }

    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// tokio fs_file.rs `basic_read`/`basic_write`: whole-file helpers and a
// `File` written, reopened and read back; appending adds to the end.
#[test]
fn files_round_trip() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("round-trip");
        let path = dir.join("data.txt");

        fs::write(&path, "hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello");

        let mut f = File::create(&path).unwrap(); // truncates
        f.write_all(b"line one\n").unwrap();
        assert_eq!(f.write(b"line two\n").unwrap(), 9);
        f.flush().unwrap();
        f.sync_all().unwrap();
        drop(f);

        let mut f = File::options().append(true).open(&path).unwrap();
        writeln!(f, "line three").unwrap();
        f.sync_data().unwrap();
        drop(f);

        let mut contents = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut contents)
            .unwrap();
        assert_eq!(contents, "line one\nline two\nline three\n");

        let lines: Vec<String> = BufReader::new(File::open(&path).unwrap())
            .lines()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lines, ["line one", "line two", "line three"]);

        let mut bytes = Vec::new();
        let n = File::open(&path).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!((n, bytes.len()), (29, 29));
    });
}

// Go os_test.go `TestSeek` and tokio fs_file.rs `rewind_seek_position`:
// seeks from the start, the end and the current position; the position is
// the open file's, shared by `try_clone`s and by `&File`.
#[test]
fn seek_and_the_shared_position() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("seek");
        let path = dir.join("seek.bin");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        f.write_all(b"0123456789").unwrap();
        assert_eq!(f.seek(SeekFrom::Start(2)).unwrap(), 2);
        assert_eq!(f.seek(SeekFrom::Current(3)).unwrap(), 5);
        assert_eq!(f.seek(SeekFrom::End(-1)).unwrap(), 9);
        assert_eq!(f.stream_position().unwrap(), 9);
        f.rewind().unwrap();

        let mut buf = [0u8; 4];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"0123");
        let mut clone = f.try_clone().unwrap();
        clone.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"4567", "a clone shares the position");

        let shared = &f;
        let mut rest = String::new();
        { shared }.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "89");
        { shared }.write_all(b"AB").unwrap();
        { shared }.seek(SeekFrom::Start(10)).unwrap();
        { shared }.read_exact(&mut buf[..2]).unwrap();
        assert_eq!(&buf[..2], b"AB");

        let err = f.read_exact(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    });
}

// Go os_test.go `TestTruncate` and tokio fs_file.rs `set_len`: the length
// follows `set_len` both ways, and the metadata and permissions of an open
// file agree with the path's.
#[test]
fn set_len_metadata_and_permissions() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("set-len");
        let path = dir.join("sized");
        let f = File::create(&path).unwrap();
        for len in [1000, 10, 0, 4096] {
            f.set_len(len).unwrap();
            assert_eq!(f.metadata().unwrap().len(), len);
            assert_eq!(fs::metadata(&path).unwrap().len(), len);
        }
        f.set_permissions(std::fs::Permissions::from_mode(0o640))
            .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(f.metadata().unwrap().is_file());

        let made = OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o604)
            .open(dir.join("with-mode"))
            .unwrap();
        // The umask may clear bits, never set them.
        assert_eq!(
            made.metadata().unwrap().permissions().mode() & !0o604 & 0o777,
            0
        );
    });
}

// tokio fs_dir.rs `create_dir`/`build_dir`/`remove`/`read_inherent` and Go
// os_test.go `TestReadDir`: nested creation, listing directories of every
// size around the batch boundary (32 entries per trip) exactly, entry
// types and metadata, and removal.
#[test]
fn directories() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("dirs");
        let nested = dir.join("a/b/c");
        fs::create_dir_all(&nested).unwrap();
        fs::create_dir_all(&nested).unwrap();
        assert!(fs::metadata(&nested).unwrap().is_dir());
        fs::create_dir(dir.join("single")).unwrap();
        fs::remove_dir(dir.join("single")).unwrap();
        assert!(!fs::try_exists(dir.join("single")).unwrap());

        for n in [0, 1, 31, 32, 33, 64, 100] {
            let sub = dir.join(format!("n{n}"));
            fs::create_dir(&sub).unwrap();
            for i in 0..n {
                fs::write(sub.join(format!("{i:03}")), [i as u8]).unwrap();
            }
            let mut names: Vec<String> = fs::read_dir(&sub)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let want: Vec<String> = (0..n).map(|i| format!("{i:03}")).collect();
            assert_eq!(names, want, "{n} entries");
        }

        fs::write(dir.join("a/file"), "12345").unwrap();
        let mut kinds: Vec<(String, bool, u64)> = fs::read_dir(dir.join("a"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.path(), dir.join("a").join(e.file_name()));
                let is_dir = e.file_type().unwrap().is_dir();
                let len = if is_dir {
                    0
                } else {
                    e.metadata().unwrap().len()
                };
                (e.file_name().into_string().unwrap(), is_dir, len)
            })
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [("b".to_string(), true, 0), ("file".to_string(), false, 5)]
        );

        let err = fs::remove_dir(dir.join("a")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
        fs::remove_dir_all(dir.join("a")).unwrap();
        assert!(!fs::try_exists(dir.join("a")).unwrap());
    });
}

// tokio fs_link.rs `test_hard_link`/`test_symlink`, Go os_test.go
// `TestHardLink`/`TestSymlink`: a hard link outlives the original name; a
// symbolic link reads back, is seen as a link without following, and
// canonicalizes to its target.
#[test]
fn links() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("links");
        let (original, hard, soft) = (dir.join("original"), dir.join("hard"), dir.join("soft"));
        fs::write(&original, "linked").unwrap();

        fs::hard_link(&original, &hard).unwrap();
        std::os::unix::fs::symlink(&original, &soft).unwrap();
        assert_eq!(fs::read_link(&soft).unwrap(), original);
        assert!(
            fs::symlink_metadata(&soft)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(fs::metadata(&soft).unwrap().is_file());
        assert_eq!(
            fs::canonicalize(&soft).unwrap(),
            fs::canonicalize(&original).unwrap()
        );

        fs::remove_file(&original).unwrap();
        assert_eq!(fs::read_to_string(&hard).unwrap(), "linked");
        assert!(!fs::try_exists(&soft).unwrap(), "a dangling link");
        assert!(fs::symlink_metadata(&soft).is_ok());
        assert_eq!(
            fs::read_link(&hard).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    });
}

// tokio fs_copy.rs `copy`/`copy_permissions` and Go os_test.go
// `TestRename`: a copy has the contents and the permissions; a rename
// replaces its target.
#[test]
fn copy_and_rename() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("copy");
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        fs::write(&a, vec![7u8; 100_000]).unwrap();
        fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(fs::copy(&a, &b).unwrap(), 100_000);
        assert_eq!(fs::read(&b).unwrap(), vec![7u8; 100_000]);
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o640
        );

        fs::write(&c, "old").unwrap();
        fs::rename(&b, &c).unwrap();
        assert_eq!(fs::metadata(&c).unwrap().len(), 100_000);
        assert!(!fs::try_exists(&b).unwrap());
    });
}

// Go os_test.go `TestOpenError`: errors keep their `io::ErrorKind`
// through the pool, for every kind of call.
#[test]
fn errors_keep_their_kind() {
    each_mode(LIMIT, |_mode| {
        let dir = TempDir::new("errors");
        let missing = dir.join("missing");
        let file = dir.join("file");
        fs::write(&file, "x").unwrap();

        let kind = |r: std::io::Result<()>| r.unwrap_err().kind();
        assert_eq!(kind(fs::read(&missing).map(drop)), ErrorKind::NotFound);
        assert_eq!(
            kind(fs::read_to_string(&missing).map(drop)),
            ErrorKind::NotFound
        );
        assert_eq!(kind(File::open(&missing).map(drop)), ErrorKind::NotFound);
        assert_eq!(kind(fs::metadata(&missing).map(drop)), ErrorKind::NotFound);
        assert_eq!(kind(fs::remove_file(&missing)), ErrorKind::NotFound);
        assert_eq!(kind(fs::read_dir(&missing).map(drop)), ErrorKind::NotFound);
        assert_eq!(
            kind(fs::copy(&missing, &file).map(drop)),
            ErrorKind::NotFound
        );
        assert_eq!(kind(fs::rename(&missing, &file)), ErrorKind::NotFound);
        assert_eq!(
            kind(fs::canonicalize(&missing).map(drop)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(fs::write(dir.join("no/such/dir"), "x")),
            ErrorKind::NotFound
        );

        assert_eq!(kind(fs::create_dir(&dir.0)), ErrorKind::AlreadyExists);
        assert_eq!(
            kind(File::create_new(&file).map(drop)),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind(fs::hard_link(&file, &file)), ErrorKind::AlreadyExists);
        assert_eq!(
            kind(fs::read_dir(&file).map(drop)),
            ErrorKind::NotADirectory
        );
        assert_eq!(kind(fs::read(&dir.0).map(drop)), ErrorKind::IsADirectory);
        assert_eq!(kind(fs::remove_dir(&file)), ErrorKind::NotADirectory);
        assert_eq!(
            kind(OpenOptions::new().open(&file).map(drop)),
            ErrorKind::InvalidInput,
            "no access mode"
        );
        let mut ro = File::open(&file).unwrap();
        assert!(ro.write(b"y").is_err(), "written through a read-only file");
    });
}

// Go fifo_test.go `TestFifoEOF`: opening a FIFO blocks until its other end
// is opened. The reader's open blocks a pool thread, not the worker: with
// one worker, the writer (another unit) still runs and opens the other
// end. Meanwhile the reader shows as `Blocked(Blocking)`.
#[test]
fn a_blocked_open_parks_only_its_coroutine() {
    each_mode(LIMIT, |mode| {
        let dir = TempDir::new("fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let opened = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (fifo, opened) = (fifo.clone(), opened.clone());
            mode.spawn(move || {
                let mut f = File::open(&fifo).unwrap(); // waits for a writer
                opened.fetch_add(1, SeqCst);
                let mut got = String::new();
                f.read_to_string(&mut got).unwrap();
                got
            })
        };
        if let common::Unit::Coroutine(h) = &reader {
            let id = h.id();
            while spindle::runtime::snapshot()
                .coroutines
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.state)
                != Some(CoroutineState::Blocked(WaitReason::Blocking))
            {
                spindle::yield_now();
            }
        }
        assert_eq!(opened.load(SeqCst), 0, "no writer yet");
        let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"through the fifo").unwrap();
        drop(w); // EOF for the reader
        assert_eq!(reader.join().unwrap(), "through the fifo");
    });
}

// Many units each writing and reading back their own file: exact
// contents, nothing lost or mixed up.
#[test]
fn many_files_at_once_exact_contents() {
    each_mode(LIMIT, |mode| {
        let dir = Arc::new(TempDir::new("many"));
        let units = mode.scale(48);
        let lines = 25;
        let handles: Vec<_> = (0..units)
            .map(|u| {
                let dir = dir.clone();
                mode.spawn(move || {
                    let path = dir.join(format!("unit-{u}"));
                    let mut f = File::options()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .unwrap();
                    for l in 0..lines {
                        writeln!(f, "{u}:{l}").unwrap();
                    }
                    drop(f);
                    let text = fs::read_to_string(&path).unwrap();
                    let want: String = (0..lines).map(|l| format!("{u}:{l}\n")).collect();
                    assert_eq!(text, want);
                    text.lines().count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, units * lines);
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), units);
    });
}

// The types can be shared and sent, as std's are.
#[test]
fn types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<File>();
    send_sync::<OpenOptions>();
    send_sync::<fs::ReadDir>();
    send_sync::<fs::DirEntry>();
}

// Conversions to and from the std types keep the open file.
#[test]
fn std_conversions() {
    each_mode(LIMIT, |_mode: Mode| {
        let dir = TempDir::new("conv");
        let path = dir.join("f");
        let std_file = std::fs::File::create(&path).unwrap();
        let mut f = File::from_std(std_file);
        f.write_all(b"abc").unwrap();
        let mut std_file: std::fs::File = f.into();
        std_file.write_all(b"def").unwrap();
        let f: File = std_file.into();
        let fd: std::os::fd::OwnedFd = f.into();
        let f = File::from(fd);
        assert_eq!(f.metadata().unwrap().len(), 6);
        assert_eq!(fs::read(&path).unwrap(), b"abcdef");
    });
}
