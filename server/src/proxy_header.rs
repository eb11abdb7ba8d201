//! The PROXY protocol (version 2, binary) that a TCP load balancer writes
//! before the TLS handshake, naming the client it accepted the connection
//! from. Behind a balancer every connection comes from the balancer's
//! address, so without it the per-address caps and rates would count all
//! phones as one. It is read only from addresses the operator lists
//! (`--proxy-protocol-from`): from anywhere else a header would let any
//! client claim any address.

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2::{Addresses, Command, Header};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// Address and TLV bytes a header may carry after its 16 fixed bytes
/// (IPv6 addresses take 36; HAProxy adds a few TLVs).
const MAX_VARIABLE_BYTES: usize = 512;

/// Why a connection from a trusted balancer was closed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    #[error("no PROXY header arrived in time")]
    Timeout,
    #[error("the PROXY header announces {0} bytes, more than {MAX_VARIABLE_BYTES}")]
    TooLong(usize),
    #[error("not a PROXY protocol v2 header: {0}")]
    Invalid(String),
}

/// Reads exactly the header (never a byte of the TLS handshake after it)
/// within `within`. `None` for a `LOCAL` header (the balancer's own health
/// check), else the client's address.
pub async fn read(
    stream: &mut TcpStream,
    within: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    tokio::time::timeout(within, async {
        let mut bytes = vec![0u8; 16];
        stream.read_exact(&mut bytes).await?;
        let variable = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        if variable > MAX_VARIABLE_BYTES {
            return Err(ProxyHeaderError::TooLong(variable));
        }
        bytes.resize(16 + variable, 0);
        stream.read_exact(&mut bytes[16..]).await?;
        client(&bytes)
    })
    .await
    .map_err(|_| ProxyHeaderError::Timeout)?
}

/// The client a complete header names.
fn client(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let header = Header::try_from(bytes).map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?;
    match (header.command, header.addresses) {
        (Command::Local, _) => Ok(None),
        (Command::Proxy, Addresses::IPv4(a)) => {
            Ok(Some(SocketAddr::from((a.source_address, a.source_port))))
        }
        (Command::Proxy, Addresses::IPv6(a)) => {
            Ok(Some(SocketAddr::from((a.source_address, a.source_port))))
        }
        (Command::Proxy, _) => Err(ProxyHeaderError::Invalid(
            "it names no IP source address".into(),
        )),
    }
}

/// A header naming `client` (what a balancer sends; for tests and tools).
pub fn header_for(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (client, server),
    )
    .build()
    .expect("a header for two socket addresses builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_their_client_or_are_refused() {
        let client_addr: SocketAddr = "203.0.113.7:50123".parse().unwrap();
        let server: SocketAddr = "10.0.0.11:8443".parse().unwrap();
        let h = header_for(client_addr, server);
        assert_eq!(client(&h).unwrap(), Some(client_addr));
        let v6: SocketAddr = "[2001:db8::7]:443".parse().unwrap();
        let h6 = header_for(v6, "[2001:db8::1]:8443".parse().unwrap());
        assert_eq!(client(&h6).unwrap(), Some(v6));
        assert!(matches!(
            client(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS, not PROXY"),
            Err(ProxyHeaderError::Invalid(_))
        ));
        // A health check's LOCAL header names nobody.
        let mut local = h.clone();
        local[12] = 0x20;
        assert_eq!(client(&local).unwrap(), None);
    }
}
