//! One way to reach AWS for every function: [`sdk_config`] and the per-service adapters.
//!
//! [`AwsSettings`] comes from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`,
//! ...) so the same binary runs against AWS and against the local emulator. Each adapter module is
//! behind a cargo feature of the same name, so a function compiles only the SDK crates it calls.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::{ConfigError, Env};
use crate::error::AwsError;

#[cfg(feature = "applicationautoscaling")]
pub mod appscaling;
#[cfg(feature = "autoscaling")]
pub mod autoscaling;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "ec2")]
pub mod ec2;
#[cfg(feature = "ecr")]
pub mod ecr;
#[cfg(feature = "ecs")]
pub mod ecs;
#[cfg(feature = "elbv2")]
pub mod elbv2;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(feature = "ecs")]
pub mod service_deployments;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "ssm")]
pub mod ssm;

/// How to reach AWS: region, endpoint override, retries and timeouts.
#[derive(Clone)]
pub struct AwsSettings {
    /// Region; `None` lets the SDK's default chain decide (Lambda always sets `AWS_REGION`).
    pub region: Option<String>,
    /// Endpoint override for every service, e.g. the local emulator.
    pub endpoint_url: Option<String>,
    /// Attempts per call, first try included (standard retry mode).
    pub max_attempts: u32,
    /// First retry back-off; later ones grow exponentially with jitter.
    pub initial_backoff: Duration,
    /// Longest one attempt may take before it counts as failed (and may be retried).
    pub attempt_timeout: Duration,
    /// Fixed credentials (the emulator's); `None` uses the SDK's default chain.
    pub static_credentials: Option<(String, String)>,
    /// Trust the system's root certificates for AWS endpoints instead of only Amazon Trust
    /// Services' five roots (for a TLS-inspecting proxy, or a partition whose endpoints use
    /// another CA).
    pub trust_system_roots: bool,
}

impl std::fmt::Debug for AwsSettings {
    // Hand-written so a debug print can never show a secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("attempt_timeout", &self.attempt_timeout)
            .field(
                "static_credentials",
                &self.static_credentials.as_ref().map(|_| "<redacted>"),
            )
            .field("trust_system_roots", &self.trust_system_roots)
            .finish()
    }
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(10),
            static_credentials: None,
            trust_system_roots: false,
        }
    }
}

impl AwsSettings {
    /// Read `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`,
    /// `OPS_AWS_INITIAL_BACKOFF_MS`, `OPS_AWS_ATTEMPT_TIMEOUT_MS` and
    /// `OPS_AWS_TRUST_SYSTEM_ROOTS`. Credentials always come from the SDK's default chain here.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = AwsSettings::default();
        let max_attempts = env.parsed_or("AWS_MAX_ATTEMPTS", defaults.max_attempts)?;
        if max_attempts == 0 {
            return Err(ConfigError::invalid(
                "AWS_MAX_ATTEMPTS",
                "0",
                "must be at least 1",
            ));
        }
        let endpoint_url = env.optional("AWS_ENDPOINT_URL").map(String::from);
        if let Some(url) = &endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "AWS_ENDPOINT_URL",
                    url,
                    "must start with http:// or https://",
                ));
            }
        }
        Ok(AwsSettings {
            region: env
                .optional("AWS_REGION")
                .or(env.optional("AWS_DEFAULT_REGION"))
                .map(String::from),
            endpoint_url,
            max_attempts,
            initial_backoff: Duration::from_millis(env.parsed_or(
                "OPS_AWS_INITIAL_BACKOFF_MS",
                defaults.initial_backoff.as_millis() as u64,
            )?),
            attempt_timeout: Duration::from_millis(env.parsed_or(
                "OPS_AWS_ATTEMPT_TIMEOUT_MS",
                defaults.attempt_timeout.as_millis() as u64,
            )?),
            static_credentials: None,
            trust_system_roots: env
                .parsed_or("OPS_AWS_TRUST_SYSTEM_ROOTS", defaults.trust_system_roots)?,
        })
    }

    /// Settings for the local emulator at `endpoint_url`: fixed test credentials, short back-off.
    pub fn emulator(endpoint_url: &str, region: &str) -> Self {
        AwsSettings {
            region: Some(region.to_string()),
            endpoint_url: Some(endpoint_url.to_string()),
            initial_backoff: Duration::from_millis(50),
            static_credentials: Some(("testing".into(), "testing".into())),
            ..AwsSettings::default()
        }
    }
}

/// Amazon Trust Services' five root certificates (PEM), with a comment naming each.
pub const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("aws/amazon_trust_roots.pem");

/// The SDK configuration every client of a function is built from, once, at init.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(settings.initial_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(settings.attempt_timeout)
        .build();
    // One HTTPS client for every SDK client of the function: rustls with ring, trusting Amazon
    // Trust Services' roots (what AWS endpoints present). Reading and parsing the system's whole
    // trust store instead was most of a cold start's cost above a bare runtime (BENCHMARKS.md).
    let trust = if settings.trust_system_roots {
        tls::TrustStore::default()
    } else {
        tls::TrustStore::empty().with_pem_certificate(AMAZON_TRUST_ROOTS)
    };
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .expect("a TLS context from a trust store always builds"),
        )
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((key, secret)) = &settings.static_credentials {
        loader =
            loader.credentials_provider(Credentials::new(key, secret, None, None, "ops-static"));
    }
    loader.load().await
}

/// Turn an SDK error into an [`AwsError`] that knows whether retrying can help.
pub fn aws_error<E>(
    service: &'static str,
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(String::from);
    let message = match (&error, error.message()) {
        (_, Some(message)) => message.to_string(),
        (SdkError::ServiceError(_), None) => "no message".to_string(),
        (other, None) => DisplayErrorContext(other).to_string(),
    };
    AwsError::classify(service, operation, code.as_deref(), Some(&message), status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_with_safe_defaults() {
        let env = Env::from_pairs([
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        let settings = AwsSettings::from_env(&env).unwrap();
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            settings.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(settings.max_attempts, 3);
        assert_eq!(settings.attempt_timeout, Duration::from_secs(10));
        assert!(
            settings.static_credentials.is_none(),
            "production uses the default credential chain"
        );
    }

    #[test]
    fn a_malformed_endpoint_or_zero_attempts_is_a_named_error() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "localhost:5000")]);
        assert_eq!(
            AwsSettings::from_env(&env).unwrap_err().to_string(),
            "invalid configuration: environment variable `AWS_ENDPOINT_URL` = `localhost:5000`: must start with http:// or https://"
        );
        let env = Env::from_pairs([("AWS_MAX_ATTEMPTS", "0")]);
        assert!(AwsSettings::from_env(&env)
            .unwrap_err()
            .to_string()
            .contains("`AWS_MAX_ATTEMPTS` = `0`: must be at least 1"));
    }

    #[test]
    fn aws_endpoints_are_trusted_through_amazon_roots_unless_told_otherwise() {
        let env = Env::from_pairs([("AWS_REGION", "us-east-1")]);
        assert!(!AwsSettings::from_env(&env).unwrap().trust_system_roots);
        let env = Env::from_pairs([("OPS_AWS_TRUST_SYSTEM_ROOTS", "true")]);
        assert!(AwsSettings::from_env(&env).unwrap().trust_system_roots);
        let env = Env::from_pairs([("OPS_AWS_TRUST_SYSTEM_ROOTS", "yes")]);
        assert!(AwsSettings::from_env(&env)
            .unwrap_err()
            .to_string()
            .contains("`OPS_AWS_TRUST_SYSTEM_ROOTS` = `yes`"));
    }

    #[test]
    fn the_pinned_roots_are_amazon_trust_services_five_valid_anchors() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let certificates = CertificateDer::pem_slice_iter(AMAZON_TRUST_ROOTS)
            .collect::<Result<Vec<_>, _>>()
            .expect("every PEM block parses");
        let mut store = rustls::RootCertStore::empty();
        for certificate in certificates {
            store.add(certificate).expect("a valid trust anchor");
        }
        assert_eq!(store.len(), 5);
        let names = String::from_utf8_lossy(AMAZON_TRUST_ROOTS);
        for root in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(names.contains(root), "{root} is missing");
        }
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let shown = format!(
            "{:?}",
            AwsSettings::emulator("http://127.0.0.1:1", "us-east-1")
        );
        assert!(
            shown.contains("<redacted>") && !shown.contains("testing"),
            "{shown}"
        );
    }
}
