#![allow(dead_code)]
//! Test support for devin-notify: a fake Devin API, a recording HTTP receiver and an
//! independent Standard Webhooks verifier. Everything talks real HTTP on 127.0.0.1.
//!
//! Include with `mod support;` from a file under `tests/`.

pub mod fake_devin;
pub mod fake_slack;
pub mod receiver;
pub mod webdriver;
pub mod webhooks;

#[allow(unused_imports)]
pub use fake_devin::{message, pr, session, FakeDevin, Fault, FaultAt, RecordedRequest};
#[allow(unused_imports)]
pub use fake_slack::{FakeSlack, SlackCall, SlackMessage, SlackReply};
#[allow(unused_imports)]
pub use receiver::{closed_port_url, Received, Receiver, Reply};

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Binds 127.0.0.1:0 and serves `router` on a spawned task. Handlers can extract
/// `ConnectInfo<ConnHandle>` and call [`ConnHandle::kill`] to drop the connection without
/// answering. Returns the bound address.
pub(crate) async fn serve_killable(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr of test listener");
    let app = router.into_make_service_with_connect_info::<ConnHandle>();
    tokio::spawn(async move {
        // Never returns (axum logs and retries accept errors).
        let _ = axum::serve(KillableListener(listener), app).await;
    });
    addr
}

/// A listener whose connections can be killed from a handler.
pub(crate) struct KillableListener(TcpListener);

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        KillableStream {
                            inner: stream,
                            killed: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every read and write once killed, so hyper drops it; it is closed
/// with SO_LINGER 0, which makes the peer see a reset.
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection killed by test",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connection info given to handlers: the peer address and the kill switch.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    pub remote: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Marks the connection dead: the response the handler returns is never written and the
    /// socket is closed with a reset.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle {
            remote: *stream.remote_addr(),
            killed: stream.io().killed.clone(),
        }
    }
}

/// Waits on `notify` until `check` returns `Some`, or the timeout passes (then `None`).
/// `check` runs under no lock of ours; it must read the current state itself.
pub(crate) async fn wait_notified<T>(
    notify: &tokio::sync::Notify,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking so a notify_waiters() between the check and the await is
        // not lost.
        notified.as_mut().enable();
        if let Some(v) = check() {
            return Some(v);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return check();
        }
    }
}
