//! What a connection runs over: a TCP socket, or TLS over one. Each
//! splits into halves the reader and the writer task own (a TCP socket
//! without a lock), and says who the peer is when TLS verified a client
//! certificate.

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;

    fn split(self) -> (Self::Read, Self::Write);

    /// Whether it is TLS.
    fn is_tls(&self) -> bool;

    /// The subject of the client certificate TLS verified, if any (the
    /// EXTERNAL mechanism's user name).
    fn peer_subject(&self) -> Option<String>;
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }

    fn is_tls(&self) -> bool {
        false
    }

    fn peer_subject(&self) -> Option<String> {
        None
    }
}

impl Transport for TlsStream<TcpStream> {
    type Read = ReadHalf<TlsStream<TcpStream>>;
    type Write = WriteHalf<TlsStream<TcpStream>>;

    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }

    fn is_tls(&self) -> bool {
        true
    }

    fn peer_subject(&self) -> Option<String> {
        let (_, connection) = self.get_ref();
        let leaf = connection.peer_certificates()?.first()?;
        crate::tls::subject_name(leaf)
    }
}
