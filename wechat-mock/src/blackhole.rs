//! A black-holed domain: a TCP port whose connections never complete (no answer, no refusal).
//!
//! Why: a domain whose packets are dropped behaves differently from one that refuses
//! connections — the client waits for its connect timeout instead of getting an RST. The
//! listener uses the smallest backlog, fills it with its own idle connections and never accepts;
//! the kernel then drops every further SYN, so a client's connect hangs until its own timeout.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long one filler connection may take before the backlog counts as full.
const FILL_PROBE: Duration = Duration::from_millis(100);
/// Upper bound on filler connections (Linux queues `backlog + 1`).
const MAX_FILLERS: usize = 16;

/// A listening port that never completes another connection. Dropping it frees the port.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl BlackHole {
    /// Binds an ephemeral localhost port and fills its accept queue.
    ///
    /// # Errors
    /// The bind or listen error, or `WouldBlock` if the queue never filled (connections kept
    /// completing, so the port would not black-hole).
    pub async fn bind() -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(1)?;
        let addr = listener.local_addr()?;
        let mut fillers = Vec::new();
        while fillers.len() < MAX_FILLERS {
            match tokio::time::timeout(FILL_PROBE, TcpStream::connect(addr)).await {
                Ok(stream) => fillers.push(stream?),
                Err(_) => {
                    return Ok(Self {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    });
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the accept queue never filled; connections would not hang",
        ))
    }

    /// The port's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`, usable as an API base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_to_a_black_hole_hang_until_the_client_gives_up() {
        let hole = BlackHole::bind().await.expect("bind");
        let attempt = tokio::time::timeout(Duration::from_millis(150), TcpStream::connect(hole.addr())).await;
        assert!(attempt.is_err(), "connect must hang, got {attempt:?}");
    }
}
