//! The hook's optional test URL check at `POST_TEST_TRAFFIC_SHIFT`: at that stage "the test
//! traffic shift is complete. The green service revision handles 100% of the test traffic"
//! (developer guide, "How Amazon ECS blue/green deployments work"), so a request to the
//! test listener's URL reaches the new revision before any production traffic does.
//!
//! The service names the check in one tag, `ops:hook-test-url`: the URL, then optional
//! space-separated settings (a tag value allows letters, digits, spaces and `+ - = . _ : / @`):
//!
//! ```text
//! http://internal-web-123.eu-west-1.elb.amazonaws.com:8080/health status=200-299 contains=ok tls=unverified
//! ```
//!
//! - `status=`: the status code or range that passes (default 200-299);
//! - `contains=`: text (without spaces) the body's first 16 KiB must contain;
//! - `tls=unverified`: do not verify the certificate (a test listener often serves the
//!   production name's certificate under the load balancer's own name); https only.
//!
//! Each at most once. The check is one GET, its retry included, within [`TIMEOUT`], made from where
//! the hook function runs (its VPC, when the template gives it subnets); it follows redirects on
//! the URL's host and port only (up to 5) and judges the last answer. A person's view from chat
//! never makes it: the swapper's chat function may not reach the test listener.

use std::time::Duration;

use ops_core::probe::{parse_url, HttpProbe, Outcome, Probe, StatusSet};
use serde_json::Value;

/// On the ECS service: the test URL check, see the module's documentation.
pub const HOOK_TEST_URL: &str = "ops:hook-test-url";
/// The stage at which the check runs.
pub const TEST_STAGE: &str = "POST_TEST_TRAFFIC_SHIFT";
/// The `User-Agent` of the check, so the service's logs tell it from users' requests.
pub const USER_AGENT: &str = "ops-blue-green-swapper-hook/1";
/// The check's whole time, its retry included: the hook answers ECS within seconds.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A service's test URL check, as its tag names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUrl {
    /// The URL, as written.
    pub url: String,
    /// The status codes that pass, as written (`200-299` by default).
    pub status: String,
    /// Text the body must contain.
    pub contains: Option<String>,
    /// Whether the server's certificate is verified.
    pub verify_tls: bool,
}

impl TestUrl {
    /// Read the tag's value, naming what does not fit.
    pub fn parse(text: &str) -> Result<TestUrl, String> {
        let problem = |detail: String| format!("tag `{HOOK_TEST_URL}` = `{text}`: {detail}");
        let mut words = text.split_whitespace();
        let url = words.next().ok_or_else(|| problem("names no URL".into()))?;
        parse_url(url).map_err(problem)?;
        let mut check = TestUrl {
            url: url.into(),
            status: "200-299".into(),
            contains: None,
            verify_tls: true,
        };
        let mut seen = Vec::new();
        for word in words {
            let setting = word.split_once('=').map_or(word, |(name, _)| name);
            if seen.contains(&setting) {
                return Err(problem(format!(
                    "`{setting}=` is given twice; give each setting once"
                )));
            }
            seen.push(setting);
            match word.split_once('=') {
                Some(("status", status)) => {
                    StatusSet::parse(&Value::String(status.into()))
                        .map_err(|e| problem(format!("`status={status}`: {e}")))?;
                    check.status = status.into();
                }
                Some(("contains", needle)) if !needle.is_empty() => {
                    check.contains = Some(needle.into())
                }
                Some(("tls", "unverified"))
                    if url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) =>
                {
                    check.verify_tls = false
                }
                Some(("tls", "unverified")) => {
                    return Err(problem(format!(
                        "`tls=unverified` needs an https:// URL; {url} uses no TLS"
                    )))
                }
                _ => {
                    return Err(problem(format!(
                        "`{word}` is not a setting (status=<code or low-high>, contains=<text without spaces>, tls=unverified)"
                    )))
                }
            }
        }
        Ok(check)
    }

    /// The probe that runs the check.
    pub fn probe(&self) -> Probe {
        let mut probe = HttpProbe::get(
            parse_url(&self.url).expect("checked when parsed"),
            USER_AGENT,
        );
        probe.expect_status =
            StatusSet::parse(&Value::String(self.status.clone())).expect("checked when parsed");
        probe.body_contains = self.contains.clone();
        probe.verify_tls = self.verify_tls;
        Probe::Http(Box::new(probe))
    }

    /// What the check found, for people: `Ok` when it passed, `Err` why not.
    pub fn verdict(&self, outcome: &Outcome) -> Result<String, String> {
        match &outcome.failure {
            None => Ok(format!(
                "test URL {} answered HTTP {}",
                self.url,
                outcome.status.unwrap_or_default()
            )),
            Some(failure) => Err(format!(
                "test URL {} failed ({}): {}{}",
                self.url,
                failure.kind.label(),
                failure.detail,
                failure
                    .snippet
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("; body: {s}"))
                    .unwrap_or_default()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::probe::{Failure, FailureKind};

    #[test]
    fn a_tag_is_a_url_and_optional_settings() {
        assert_eq!(
            TestUrl::parse("http://alb.internal:8080/health").unwrap(),
            TestUrl {
                url: "http://alb.internal:8080/health".into(),
                status: "200-299".into(),
                contains: None,
                verify_tls: true,
            }
        );
        let full = TestUrl::parse(
            "https://alb.internal:8443/health status=200 contains=ok tls=unverified",
        )
        .unwrap();
        assert_eq!(full.status, "200");
        assert_eq!(full.contains.as_deref(), Some("ok"));
        assert!(!full.verify_tls);
        assert!(
            !TestUrl::parse("HTTPS://alb.internal/health tls=unverified")
                .unwrap()
                .verify_tls
        );
        let Probe::Http(probe) = full.probe() else {
            panic!("an HTTP probe")
        };
        assert!(probe.expect_status.contains(200) && !probe.expect_status.contains(201));
        assert_eq!(probe.body_contains.as_deref(), Some("ok"));
        assert!(!probe.verify_tls);
    }

    #[test]
    fn a_tag_that_does_not_fit_is_named_with_what_is_wrong() {
        let cases = [
            ("", "names no URL"),
            ("ftp://alb/x", "must start with http:// or https://"),
            ("http://user:pw@alb/x", "must not carry credentials"),
            (
                "http://alb/x status=600",
                "`status=600`: `600` is not an HTTP status code",
            ),
            ("http://alb/x retries=3", "`retries=3` is not a setting"),
            ("http://alb/x tls=off", "`tls=off` is not a setting"),
            ("http://alb/x contains=", "`contains=` is not a setting"),
            (
                "http://alb/x status=200 status=500",
                "`status=` is given twice",
            ),
            (
                "http://alb/x tls=unverified",
                "`tls=unverified` needs an https:// URL",
            ),
            (
                "HTTP://alb/x tls=unverified",
                "`tls=unverified` needs an https:// URL",
            ),
            ("http://alb:99999/x", "`99999` is not a port (1 to 65535)"),
            ("http://alb:808O/x", "is not a port"),
            ("http://alb:0/x", "`0` is not a port"),
        ];
        for (tag, expected) in cases {
            let error = TestUrl::parse(tag).unwrap_err();
            assert!(
                error.starts_with(&format!("tag `{HOOK_TEST_URL}` = `{tag}`: "))
                    && error.contains(expected),
                "{tag}: {error}"
            );
        }
    }

    #[test]
    fn a_verdict_names_the_url_the_failure_and_the_body() {
        let check = TestUrl::parse("http://alb:8080/health").unwrap();
        let passed = Outcome {
            failure: None,
            status: Some(204),
            latency_ms: 3,
            address: None,
            cert_days_left: None,
            attempts: 1,
        };
        assert_eq!(
            check.verdict(&passed),
            Ok("test URL http://alb:8080/health answered HTTP 204".into())
        );
        let failed = Outcome {
            failure: Some(Failure {
                kind: FailureKind::Status,
                detail: "HTTP 503 (expected 200-299)".into(),
                snippet: Some("upstream not ready".into()),
            }),
            status: Some(503),
            ..passed
        };
        assert_eq!(
            check.verdict(&failed),
            Err("test URL http://alb:8080/health failed (status): HTTP 503 (expected 200-299); body: upstream not ready".into())
        );
    }
}
