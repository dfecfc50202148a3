//! TCP: [`TcpListener`] (with its accept loop, [`Incoming`]) and
//! [`TcpStream`].

mod listener;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use stream::TcpStream;
