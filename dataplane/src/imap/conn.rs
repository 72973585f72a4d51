//! A client connection's byte stream: plain TCP or rustls, swappable by STARTTLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The transport under a session.
pub enum IoStream {
    /// Plain TCP (before STARTTLS, or without TLS).
    Plain(TcpStream),
    /// TLS over TCP (implicit TLS, or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
}

impl IoStream {
    /// True when the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, IoStream::Tls(_))
    }
}

impl AsyncRead for IoStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            IoStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for IoStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            IoStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_flush(cx),
            IoStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            IoStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            IoStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
