//! ICMP echo on the wire: packets and the shared sockets.

pub mod packet;
pub mod socket;

pub use packet::Family;
pub use socket::{IcmpSocket, OpenError, SocketKind, SocketOptions, SocketPreference};
