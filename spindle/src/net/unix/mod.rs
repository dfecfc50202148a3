//! Unix-domain sockets: [`UnixListener`] (with its accept loop,
//! [`UnixIncoming`]), [`UnixStream`] and [`UnixDatagram`].

mod datagram;
mod listener;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::{UnixIncoming, UnixListener};
pub use stream::UnixStream;

use std::io;
use std::os::unix::net::SocketAddr;

use socket2::SockAddr;

/// `addr` as a raw address for `connect(2)` and `sendto(2)`: a path, or on
/// Linux an abstract name.
fn raw_addr(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::ffi::OsStr;
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;

        if let Some(name) = addr.as_abstract_name() {
            // An abstract address is a path starting with a NUL byte.
            let mut raw = Vec::with_capacity(name.len() + 1);
            raw.push(0);
            raw.extend_from_slice(name);
            return SockAddr::unix(OsStr::from_bytes(&raw));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "an unnamed Unix socket address cannot be connected or sent to",
    ))
}
