//! Logging set up the way Lambda reads it.
//!
//! With `AWS_LAMBDA_LOG_FORMAT=JSON` (the SAM template sets it) each event is one JSON object per
//! line with the fields flattened, which CloudWatch Logs Insights can query; otherwise plain text
//! for a terminal. The level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`, and
//! the AWS SDK's own chatter is kept at `warn` unless a directive names it.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::Env;

/// Crates whose info-level logs describe every HTTP exchange; noise for ops unless asked for.
const QUIET_CRATES: &[&str] = &[
    "aws_config",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "hyper",
    "rustls",
];

/// Install the global subscriber writing to stdout; a second call is a no-op.
pub fn init(env: &Env) {
    init_with_writer(env, std::io::stdout);
}

/// Install the global subscriber writing to `writer`; a second call is a no-op.
pub fn init_with_writer<W>(env: &Env, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = env
        .optional("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .without_time();
    let registry = tracing_subscriber::registry();
    // A second init (tests calling handlers that init) is harmless, so the error is dropped.
    let _ = if json {
        registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter(env)),
            )
            .try_init()
    } else {
        registry
            .with(layer.with_ansi(false).with_filter(filter(env)))
            .try_init()
    };
}

/// `target=level` directives (a per-target filter: no regular expressions, so nothing of a regex
/// engine is linked into the functions).
fn filter(env: &Env) -> Targets {
    let level = env
        .optional("AWS_LAMBDA_LOG_LEVEL")
        .or(env.optional("RUST_LOG"))
        .unwrap_or("info")
        .to_string();
    let directives = match level.parse::<LevelFilter>() {
        // A bare level: apply it to our code, keep the SDK quiet.
        Ok(base) => {
            let mut parts = vec![base.to_string().to_lowercase()];
            parts.extend(QUIET_CRATES.iter().map(|c| format!("{c}=warn")));
            parts.join(",")
        }
        // Full directives: the operator knows what they want.
        Err(_) => level,
    };
    let valid = directives
        .split(',')
        .all(|part| match part.trim().split_once('=') {
            None => part.trim().parse::<LevelFilter>().is_ok(),
            Some((target, level)) => {
                !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
                    && level.parse::<LevelFilter>().is_ok()
            }
        });
    valid
        .then(|| directives.parse().ok())
        .flatten()
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn a_bare_level_quiets_the_sdk() {
        let filter = filter(&Env::from_pairs([("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]));
        assert!(filter.would_enable("deploy_trigger", &Level::DEBUG));
        assert!(!filter.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(filter.would_enable("aws_smithy_runtime", &Level::WARN));
    }

    #[test]
    fn full_directives_are_kept_and_garbage_falls_back_to_info() {
        let filter = filter(&Env::from_pairs([("RUST_LOG", "ops_core=trace")]));
        assert!(filter.would_enable("ops_core::aws", &Level::TRACE));
        assert!(
            !filter.would_enable("hyper", &Level::ERROR),
            "only what is named"
        );
        let garbage = filter_of("[[[");
        assert!(garbage.would_enable("ops_core", &Level::INFO));
        assert!(!garbage.would_enable("ops_core", &Level::DEBUG));
    }

    fn filter_of(value: &str) -> Targets {
        filter(&Env::from_pairs([("RUST_LOG", value)]))
    }
}
