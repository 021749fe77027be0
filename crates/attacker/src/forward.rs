//! A loopback TCP relay: the broker reached through an address its certificate does not
//! name, as a man in the middle or a mis-routed DNS entry would present it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The relay's address: on the loopback network but not `127.0.0.1`, which the broker
/// certificates name.
pub const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Relays every connection to `upstream` until dropped.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    pub async fn start(upstream: String) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(SocketAddr::new(RELAY_IP, 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Dropped with the accept loop, so aborting the relay ends every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Relay { addr, task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_pass_both_ways_and_stop_with_the_relay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let relay = Relay::start(echo_addr.to_string()).await.expect("relay");
        assert_eq!(relay.addr.ip(), RELAY_IP);
        let mut client = TcpStream::connect(relay.addr).await.expect("connect");
        client.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        let addr = relay.addr;
        drop(relay);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "relay still listening"
        );
    }
}
