//! Real servers on loopback for the health monitor's tests, benchmark and demo: HTTP and HTTPS
//! servers whose answer can be changed while they run (healthy, an error, slow, hanging, a
//! redirect), a listening TCP port, and a closed one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// How a test server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// At once, with this status and body.
    Answer {
        /// HTTP status.
        status: u16,
        /// Body.
        body: String,
    },
    /// After a delay, with this status and body.
    Slow {
        /// How long to wait first.
        delay: Duration,
        /// HTTP status.
        status: u16,
        /// Body.
        body: String,
    },
    /// Never: the connection is accepted and the request read, and nothing is ever sent.
    Hang,
    /// A redirect to `location`.
    Redirect {
        /// Where to.
        location: String,
    },
}

impl Reply {
    /// `200 OK` with body `ok`.
    pub fn healthy() -> Reply {
        Reply::Answer {
            status: 200,
            body: "ok".into(),
        }
    }

    /// An error status with a body.
    pub fn error(status: u16, body: &str) -> Reply {
        Reply::Answer {
            status,
            body: body.into(),
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`.
#[derive(Debug)]
pub struct TestCert {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl TestCert {
    /// One valid from yesterday for about `days` more days.
    pub fn self_signed(days: u32) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("certificate parameters");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (year, month, day) = ymd(now - 86_400);
        params.not_before = rcgen::date_time_ymd(year, month, day);
        // Midnight after the day `days` from now, so "expires in N days" reads N.
        let (year, month, day) = ymd(now + u64::from(days) * 86_400 + 86_400);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let cert = params.self_signed(&key).expect("sign the certificate");
        TestCert {
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

/// The UTC year, month and day of an epoch time.
fn ymd(epoch: u64) -> (i32, u8, u8) {
    let text = ops_core::time::iso8601(epoch);
    let number = |range: std::ops::Range<usize>| text[range].parse::<i32>().expect("a date");
    (number(0..4), number(5..7) as u8, number(8..10) as u8)
}

/// An HTTP (or HTTPS) server on `127.0.0.1`, stopped when dropped.
pub struct TestServer {
    /// Its port.
    pub port: u16,
    tls: bool,
    reply: Arc<Mutex<Reply>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// A plain HTTP server answering `reply`.
    pub async fn http(reply: Reply) -> TestServer {
        TestServer::start(reply, None).await
    }

    /// An HTTPS server with `cert`, answering `reply`.
    pub async fn https(reply: Reply, cert: &TestCert) -> TestServer {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )
        .expect("a server certificate");
        TestServer::start(reply, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start(reply: Reply, tls: Option<TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let reply = Arc::new(Mutex::new(reply));
        let serving = reply.clone();
        let secure = tls.is_some();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (reply, tls) = (serving.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(stream, &reply).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer(stream, &reply).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            port,
            tls: secure,
            reply,
            task,
        }
    }

    /// Change how it answers from now on.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(|p| p.into_inner()) = reply;
    }

    /// Its URL at `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: &Mutex<Reply>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let reply = reply.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (status, body, location) = match reply {
        Reply::Answer { status, body } => (status, body, None),
        Reply::Slow {
            delay,
            status,
            body,
        } => {
            tokio::time::sleep(delay).await;
            (status, body, None)
        }
        Reply::Hang => {
            // Hold the connection open and silent until the client gives up.
            let _ = stream.read(&mut buffer).await;
            std::future::pending::<()>().await;
            return;
        }
        Reply::Redirect { location } => (302, String::new(), Some(location)),
    };
    let mut head = format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(location) = location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TCP port that accepts connections (and says nothing), stopped when dropped.
pub struct OpenPort {
    /// The port.
    pub port: u16,
    task: JoinHandle<()>,
}

impl OpenPort {
    /// Listen on a free loopback port.
    pub async fn start() -> OpenPort {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        OpenPort { port, task }
    }
}

impl Drop for OpenPort {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
