//! Logging set up the way Lambda reads it.
//!
//! With `AWS_LAMBDA_LOG_FORMAT=JSON` (the SAM template sets it) each event is one JSON object per
//! line with the fields flattened, which CloudWatch Logs Insights can query; otherwise plain text
//! for a terminal. The level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`, and
//! the AWS SDK's own chatter is kept at `warn` unless a directive names it.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(env))
        .with_writer(writer)
        .with_target(false)
        .without_time();
    // A second init (tests calling handlers that init) is harmless, so the error is dropped.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

fn filter(env: &Env) -> EnvFilter {
    let level = env
        .optional("AWS_LAMBDA_LOG_LEVEL")
        .or(env.optional("RUST_LOG"))
        .unwrap_or("info")
        .to_string();
    let base_level = level.parse::<LevelFilter>().ok();
    let mut directives = match base_level {
        // A bare level: apply it to our code, keep the SDK quiet.
        Some(base) => {
            let mut parts = vec![base.to_string().to_lowercase()];
            parts.extend(QUIET_CRATES.iter().map(|c| format!("{c}=warn")));
            parts.join(",")
        }
        // Full directives: the operator knows what they want.
        None => level,
    };
    if EnvFilter::try_new(&directives).is_err() {
        directives = "info".into();
    }
    EnvFilter::new(directives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_quiets_the_sdk() {
        let env = Env::from_pairs([("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]);
        let text = filter(&env).to_string();
        assert!(text.contains("aws_smithy_runtime=warn"), "{text}");
        assert!(text.contains("debug"), "{text}");
    }

    #[test]
    fn full_directives_are_kept_and_garbage_falls_back_to_info() {
        let env = Env::from_pairs([("RUST_LOG", "ops_core=trace")]);
        assert_eq!(filter(&env).to_string(), "ops_core=trace");
        let env = Env::from_pairs([("RUST_LOG", "[[[")]);
        assert_eq!(filter(&env).to_string(), "info");
    }
}
