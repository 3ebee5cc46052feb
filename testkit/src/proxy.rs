//! A TCP proxy in front of a real service (moto) that adds latency or cuts the service off:
//! what a DynamoDB under throttling, a regional brown-out or an outage looks like to the SDK,
//! without changing a line of the client.
//!
//! Every chunk the client sends waits `delay` before it is forwarded, so each HTTP request (one
//! chunk on a keep-alive connection) is answered `delay` late. `set_down(true)` drops every open
//! connection and refuses new ones (accepted, then closed at once: the SDK sees a dispatch
//! failure, as with a dead endpoint) until `set_down(false)`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug)]
struct Control {
    delay_ms: AtomicU64,
    down: AtomicBool,
    /// Bumped on every `set_down(true)`: open connections watch it and close.
    cut: watch::Sender<u64>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(0);
        let control = Arc::new(Control {
            delay_ms: AtomicU64::new(0),
            down: AtomicBool::new(false),
            cut,
        });
        let upstream = upstream.to_owned();
        let task = tokio::spawn({
            let control = Arc::clone(&control);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if control.down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    tokio::spawn(serve(client, upstream.clone(), Arc::clone(&control)));
                }
            }
        });
        Ok(Self { addr, control, task })
    }

    /// The proxy for the `http://host:port` endpoint of `url`.
    ///
    /// # Errors
    /// The bind error; `InvalidInput` for a URL without `http://host:port`.
    pub async fn for_url(url: &str) -> std::io::Result<Self> {
        let upstream = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| rest.contains(':'))
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not http://host:port: {url}"))
            })?;
        Self::start(upstream).await
    }

    /// `http://127.0.0.1:{port}`: point the client here instead of at the service.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request is answered `delay` late from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.control
            .delay_ms
            .store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Cuts the service off (open connections dropped, new ones refused) or restores it.
    pub fn set_down(&self, down: bool) {
        self.control.down.store(down, Ordering::SeqCst);
        if down {
            self.control.cut.send_modify(|generation| *generation += 1);
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.control.cut.send_modify(|generation| *generation += 1);
    }
}

async fn serve(client: TcpStream, upstream: String, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut cut = control.cut.subscribe();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let delay = control.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let answers = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = requests => {}
        _ = answers => {}
        _ = cut.changed() => {}
    }
}
