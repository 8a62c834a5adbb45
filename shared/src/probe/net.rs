//! Reaching a target: resolve its name and connect, within the check's deadline.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::{Failure, FailureKind};

/// Resolve `host` (IPv4 first) and connect to `port`; the stream and the address it reached.
pub async fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), (Failure, Option<SocketAddr>)> {
    let resolved = match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
        Err(_) => {
            return Err((
                Failure::new(
                    FailureKind::Timeout,
                    format!("resolving {host} took the whole timeout"),
                ),
                None,
            ))
        }
        Ok(Err(error)) => {
            return Err((
                Failure::new(FailureKind::Dns, format!("cannot resolve {host}: {error}")),
                None,
            ))
        }
        Ok(Ok(addresses)) => addresses.collect::<Vec<_>>(),
    };
    let Some(address) = resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
    else {
        return Err((
            Failure::new(FailureKind::Dns, format!("{host} resolves to no address")),
            None,
        ));
    };
    match timeout_at(deadline, TcpStream::connect(address)).await {
        Err(_) => Err((
            Failure::new(
                FailureKind::Timeout,
                format!("no connection to {address} before the timeout"),
            ),
            Some(address),
        )),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => Err((
            Failure::new(
                FailureKind::Refused,
                format!("connection refused by {address}"),
            ),
            Some(address),
        )),
        Ok(Err(error)) => Err((
            Failure::new(
                FailureKind::Network,
                format!("cannot connect to {address}: {error}"),
            ),
            Some(address),
        )),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok((stream, address))
        }
    }
}
