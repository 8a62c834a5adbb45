//! One HTTP(S) check: connect, TLS (reading the certificate's expiry), one request, the body up to
//! a cap, redirects followed only on the target's own host and port (or from http to https on
//! their default ports), then the verdict.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

use super::cert;
use super::net::connect;
use super::tls::TlsConfigs;
use super::HttpProbe;
use super::{Failure, FailureKind, Outcome};

/// Redirects followed (on the same host) before the last answer counts as it is.
const MAX_REDIRECTS: usize = 5;
/// Characters of the body kept for an alert.
const SNIPPET_CHARS: usize = 200;

/// An HTTP answer, its body cut at the probe's cap.
struct Answer {
    status: u16,
    body: Vec<u8>,
    truncated: bool,
    location: Option<String>,
}

type Failed = (Failure, Option<SocketAddr>);

/// Run the check until `deadline`; `started` is when the attempt began (for latency).
pub async fn check(
    probe: &HttpProbe,
    tls: &TlsConfigs,
    deadline: Instant,
    started: Instant,
) -> Outcome {
    let mut url = probe.url.clone();
    let mut cert_days_left = None;
    let outcome = |failure: Option<Failure>, status, address: Option<SocketAddr>, days| Outcome {
        failure,
        status,
        latency_ms: started.elapsed().as_millis() as u64,
        address: address.map(|a| a.to_string()),
        cert_days_left: days,
        attempts: 1,
    };
    for _ in 0..=MAX_REDIRECTS {
        let (answer, address, days) = match exchange(probe, &url, tls, deadline).await {
            Ok(done) => done,
            Err((failure, address)) => {
                return outcome(Some(failure), None, address, cert_days_left)
            }
        };
        cert_days_left = cert_days_left.or(days);
        let redirect = answer
            .location
            .as_deref()
            .filter(|_| (300..400).contains(&answer.status));
        if let Some(location) = redirect {
            match same_host_target(&url, location) {
                Some(next) => {
                    url = next;
                    continue;
                }
                None if !probe.expect_status.contains(answer.status) => {
                    let failure = Failure::new(
                        FailureKind::Redirect,
                        format!(
                            "HTTP {} redirect to {location}, off the target's host: not followed",
                            answer.status
                        ),
                    );
                    return outcome(
                        Some(failure),
                        Some(answer.status),
                        Some(address),
                        cert_days_left,
                    );
                }
                None => {}
            }
        }
        let failure = verdict(probe, &answer, started.elapsed().as_millis() as u64);
        return outcome(failure, Some(answer.status), Some(address), cert_days_left);
    }
    outcome(
        Some(Failure::new(
            FailureKind::Redirect,
            format!("more than {MAX_REDIRECTS} redirects"),
        )),
        None,
        None,
        cert_days_left,
    )
}

/// Whether the answer is healthy: status, body, then latency.
fn verdict(probe: &HttpProbe, answer: &Answer, latency_ms: u64) -> Option<Failure> {
    let text = String::from_utf8_lossy(&answer.body);
    let with_snippet = |kind, detail: String| Failure {
        kind,
        detail,
        snippet: Some(snippet(&text, answer.truncated)),
    };
    if !probe.expect_status.contains(answer.status) {
        return Some(with_snippet(
            FailureKind::Status,
            format!("HTTP {} (expected {})", answer.status, probe.expect_status),
        ));
    }
    if let Some(needle) = probe.body_contains.as_deref().filter(|n| !text.contains(n)) {
        return Some(with_snippet(
            FailureKind::Body,
            format!("the body does not contain `{needle}`"),
        ));
    }
    if let Some(pattern) = probe.body_regex.as_ref().filter(|p| !p.is_match(&text)) {
        return Some(with_snippet(
            FailureKind::Body,
            format!("the body does not match `{}`", pattern.as_str()),
        ));
    }
    match probe.max_latency {
        Some(limit) if latency_ms > limit.as_millis() as u64 => Some(Failure::new(
            FailureKind::Latency,
            format!(
                "answered in {latency_ms} ms, over the {} ms limit",
                limit.as_millis()
            ),
        )),
        _ => None,
    }
}

/// The body's start as one line of printable text.
fn snippet(text: &str, truncated: bool) -> String {
    let mut kept: String = text
        .chars()
        .take(SNIPPET_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    kept = kept.trim().to_string();
    if truncated || text.chars().count() > SNIPPET_CHARS {
        kept.push_str("...");
    }
    kept
}

/// The URL a redirect leads to, if it stays on `current`'s host and never downgrades HTTPS.
fn same_host_target(current: &Uri, location: &str) -> Option<Uri> {
    let next: Uri = if location.starts_with('/') {
        format!(
            "{}://{}{location}",
            current.scheme_str()?,
            current.authority()?.as_str()
        )
        .parse()
        .ok()?
    } else {
        location.parse().ok()?
    };
    let same_host = next.host()?.eq_ignore_ascii_case(current.host()?);
    // The same port, or http's default to https's default (an upgrade): a redirect to another
    // listener of the host (a test listener to the production one) is not followed.
    let port = |url: &Uri| {
        url.port_u16()
            .unwrap_or(if url.scheme_str() == Some("https") {
                443
            } else {
                80
            })
    };
    let defaults = |url: &Uri| {
        url.port().is_none()
            || matches!(
                (url.scheme_str(), port(url)),
                (Some("http"), 80) | (Some("https"), 443)
            )
    };
    let same_port = port(&next) == port(current) || (defaults(&next) && defaults(current));
    let downgrade = current.scheme_str() == Some("https") && next.scheme_str() != Some("https");
    let web = matches!(next.scheme_str(), Some("http" | "https"));
    (same_host && same_port && !downgrade && web).then_some(next)
}

/// Connect (with TLS for https), send the request, read the answer.
async fn exchange(
    probe: &HttpProbe,
    url: &Uri,
    tls: &TlsConfigs,
    deadline: Instant,
) -> Result<(Answer, SocketAddr, Option<i64>), Failed> {
    let https = url.scheme_str() == Some("https");
    let host = url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let (stream, address) = connect(&host, port, deadline).await?;
    if !https {
        return request(probe, url, stream, address, deadline)
            .await
            .map(|answer| (answer, address, None));
    }
    let config = if probe.verify_tls {
        tls.verifying.clone()
    } else {
        tls.trusting.clone()
    };
    let name = ServerName::try_from(host.clone()).map_err(|_| {
        (
            Failure::new(
                FailureKind::Tls,
                format!("`{host}` is not a name TLS can verify"),
            ),
            Some(address),
        )
    })?;
    let stream = match timeout_at(deadline, TlsConnector::from(config).connect(name, stream)).await
    {
        Err(_) => {
            return Err((
                Failure::new(
                    FailureKind::Timeout,
                    format!("the TLS handshake with {address} did not finish before the timeout"),
                ),
                Some(address),
            ))
        }
        Ok(Err(error)) => {
            return Err((
                Failure::new(
                    FailureKind::Tls,
                    format!("TLS handshake with {address} failed: {error}"),
                ),
                Some(address),
            ))
        }
        Ok(Ok(stream)) => stream,
    };
    let days = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| cert::not_after(leaf))
        .map(days_left);
    request(probe, url, stream, address, deadline)
        .await
        .map(|answer| (answer, address, days))
}

fn days_left(not_after: u64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    (not_after as i64 - now as i64).div_euclid(86_400)
}

/// Stops the connection's driver task when the exchange ends, whichever way.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn request<S>(
    probe: &HttpProbe,
    url: &Uri,
    io: S,
    address: SocketAddr,
    deadline: Instant,
) -> Result<Answer, Failed>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let fail = |kind, detail: String| (Failure::new(kind, detail), Some(address));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| fail(FailureKind::Protocol, format!("{address}: {e}")))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let authority = url.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = url.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = Request::builder()
        .method(probe.method.clone())
        .uri(path)
        .header(HOST, authority)
        .header(USER_AGENT, probe.user_agent)
        .header(ACCEPT, "*/*");
    for (name, value) in &probe.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = Full::new(Bytes::from(probe.body.clone().unwrap_or_default()));
    // The error never shows header values: they may be secrets.
    let request = builder.body(body).map_err(|_| {
        fail(
            FailureKind::Protocol,
            "a configured header is not valid in HTTP".into(),
        )
    })?;
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Err(_) => {
            return Err(fail(
                FailureKind::Timeout,
                format!("no answer from {address} before the timeout"),
            ))
        }
        Ok(Err(error)) if error.is_incomplete_message() || error.is_closed() => {
            return Err(fail(
                FailureKind::Network,
                format!("{address} closed the connection without an answer"),
            ))
        }
        Ok(Err(error)) => {
            return Err(fail(
                FailureKind::Protocol,
                format!("{address} did not answer HTTP: {error}"),
            ))
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(String::from);
    let mut body = response.into_body();
    let mut data = Vec::new();
    let mut truncated = false;
    loop {
        match timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(fail(
                    FailureKind::Timeout,
                    format!("the body from {address} did not arrive before the timeout"),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(fail(
                    FailureKind::Network,
                    format!("reading the body from {address}: {error}"),
                ))
            }
            Ok(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    let room = probe.max_body - data.len();
                    data.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() >= room {
                        truncated = chunk.len() > room;
                        break;
                    }
                }
            }
        }
    }
    Ok(Answer {
        status,
        body: data,
        truncated,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_host_and_never_downgrade() {
        let current: Uri = "https://billing.internal:8443/health".parse().unwrap();
        assert_eq!(
            same_host_target(&current, "/health/").map(|u| u.to_string()),
            Some("https://billing.internal:8443/health/".into())
        );
        assert!(same_host_target(&current, "https://BILLING.internal:8443/x").is_some());
        assert!(
            same_host_target(&current, "http://billing.internal/x").is_none(),
            "downgrade"
        );
        assert!(
            same_host_target(&current, "https://evil.example/x").is_none(),
            "other host"
        );
        assert!(same_host_target(&current, "ftp://billing.internal/x").is_none());
        assert!(
            same_host_target(&current, "https://billing.internal:443/x").is_none(),
            "another listener of the host"
        );
        let plain: Uri = "http://alb.internal/health".parse().unwrap();
        assert!(
            same_host_target(&plain, "https://alb.internal/health").is_some(),
            "an upgrade to https"
        );
        let test_listener: Uri = "http://alb.internal:8080/health".parse().unwrap();
        assert!(same_host_target(&test_listener, "http://alb.internal/health").is_none());
        assert!(same_host_target(&test_listener, "/other").is_some());
    }

    #[test]
    fn a_snippet_is_one_printable_line() {
        assert_eq!(
            snippet("  error:\n\tdatabase down\r\n", false),
            "error:  database down"
        );
        assert_eq!(snippet(&"x".repeat(300), false).len(), 203);
        assert!(snippet("short", true).ends_with("..."));
    }
}
