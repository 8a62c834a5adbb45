//! Image references: `[registry/]repository[:tag][@sha256:digest]`, parsed strictly and printed back.
//!
//! Deploys pin images by digest so that what runs is exactly what was pushed; the tag stays in the
//! reference for humans. The grammar is the container distribution reference grammar, restricted to
//! `sha256` digests (the only kind ECR produces).

use std::fmt;

/// Longest repository name (with registry) the distribution spec allows.
const MAX_NAME_LEN: usize = 255;
/// Longest tag.
const MAX_TAG_LEN: usize = 128;

/// Why an image reference does not parse; each names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// Nothing was given.
    #[error("image reference is empty")]
    Empty,
    /// Spaces or control characters.
    #[error("image reference `{0}` contains whitespace or control characters")]
    Whitespace(String),
    /// The name part is over 255 characters.
    #[error("image name is {0} characters long; the limit is 255")]
    NameTooLong(usize),
    /// The registry host or port is malformed.
    #[error("registry `{0}` is not a valid host[:port]")]
    InvalidRegistry(String),
    /// `a//b`, a leading or a trailing slash.
    #[error("repository `{0}` has an empty path component")]
    EmptyComponent(String),
    /// A path component with upper case or bad separators.
    #[error("repository path component `{0}` must be lowercase letters and digits, joined by `.`, `_`, `__` or dashes")]
    InvalidComponent(String),
    /// `web:` with nothing after the colon.
    #[error("tag is empty in `{0}`")]
    EmptyTag(String),
    /// A tag with forbidden characters, a leading `.`/`-`, or over 128 characters.
    #[error(
        "tag `{0}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
    )]
    InvalidTag(String),
    /// `@` given twice.
    #[error("image reference `{0}` has more than one digest")]
    MultipleDigests(String),
    /// A digest without `algorithm:`.
    #[error("digest `{0}` must look like sha256:<64 hex digits>")]
    DigestShape(String),
    /// A digest of another algorithm.
    #[error("digest algorithm `{0}` is not supported; ECR images use sha256")]
    DigestAlgorithm(String),
    /// A sha256 digest of the wrong length.
    #[error("sha256 digest has {0} hex digits; it must have 64")]
    DigestLength(usize),
    /// A sha256 digest with non-hex or upper-case characters.
    #[error("sha256 digest must be lowercase hex digits, found `{0}`")]
    DigestNotHex(char),
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: Option<String>,
    /// Repository path, e.g. `team/web`.
    pub repository: String,
    /// Tag, e.g. `release-42`.
    pub tag: Option<String>,
    /// Digest, `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parse a reference strictly.
    pub fn parse(input: &str) -> Result<Self, ImageRefError> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageRefError::Whitespace(input.to_string()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((_, digest)) if digest.contains('@') => {
                return Err(ImageRefError::MultipleDigests(input.into()))
            }
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (input, None),
        };
        // A colon after the last slash separates the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(offset) => {
                let (name, tag) = rest.split_at(last_slash + offset);
                (name, Some(parse_tag(&tag[1..], input)?))
            }
            None => (rest, None),
        };
        if name.len() > MAX_NAME_LEN {
            return Err(ImageRefError::NameTooLong(name.len()));
        }
        let (registry, repository) = split_registry(name)?;
        check_repository(repository)?;
        Ok(ImageRef {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The same image pinned to `digest` (already validated), keeping the tag for humans.
    pub fn pinned(&self, digest: &str) -> Self {
        ImageRef {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The same repository at another tag, with no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Account and region if the registry is a private ECR registry.
    pub fn ecr_registry(&self) -> Option<(String, String)> {
        let registry = self.registry.as_deref()?;
        let mut parts = registry.split('.');
        let account = parts.next()?;
        let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
        let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        (valid_account && dkr == "dkr" && ecr == "ecr")
            .then(|| (account.to_string(), region.to_string()))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// The containers (name → current image) that run an image of `registry/repository`, whatever
/// its tag or digest.
pub fn containers_running(
    images: &std::collections::BTreeMap<String, String>,
    registry: &str,
    repository: &str,
) -> Vec<(String, String)> {
    images
        .iter()
        .filter(|(_, current)| {
            ImageRef::parse(current).is_ok_and(|r| {
                r.registry.as_deref() == Some(registry) && r.repository == repository
            })
        })
        .map(|(name, current)| (name.clone(), current.clone()))
        .collect()
}

/// Check a digest: `sha256:` and 64 lowercase hex digits.
pub fn parse_digest(digest: &str) -> Result<String, ImageRefError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| ImageRefError::DigestShape(digest.into()))?;
    if algorithm.is_empty() || hex.is_empty() {
        return Err(ImageRefError::DigestShape(digest.into()));
    }
    if algorithm != "sha256" {
        return Err(ImageRefError::DigestAlgorithm(algorithm.into()));
    }
    if let Some(bad) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(ImageRefError::DigestNotHex(bad));
    }
    if hex.len() != 64 {
        return Err(ImageRefError::DigestLength(hex.len()));
    }
    Ok(digest.to_string())
}

/// Check a tag on its own (as a chat `deploy` sends it); `context` is quoted in the empty-tag error.
pub fn parse_tag(tag: &str, context: &str) -> Result<String, ImageRefError> {
    if tag.is_empty() {
        return Err(ImageRefError::EmptyTag(context.into()));
    }
    let valid_start = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let valid_chars = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_start || !valid_chars || tag.len() > MAX_TAG_LEN {
        return Err(ImageRefError::InvalidTag(tag.into()));
    }
    Ok(tag.to_string())
}

fn split_registry(name: &str) -> Result<(Option<String>, &str), ImageRefError> {
    let Some((first, rest)) = name.split_once('/') else {
        return Ok((None, name));
    };
    let looks_like_host = first.contains('.') || first.contains(':') || first == "localhost";
    if !looks_like_host {
        return Ok((None, name));
    }
    let (host, port) = match first.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (first, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    if !host_ok || !port_ok {
        return Err(ImageRefError::InvalidRegistry(first.into()));
    }
    Ok((Some(first.to_string()), rest))
}

fn check_repository(repository: &str) -> Result<(), ImageRefError> {
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ImageRefError::EmptyComponent(repository.into()));
        }
        if !valid_component(component) {
            return Err(ImageRefError::InvalidComponent(component.into()));
        }
    }
    Ok(())
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234ef56";

    #[test]
    fn full_ecr_reference_parses_and_prints_back() {
        let text =
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:release-42@{DIGEST}");
        let image = ImageRef::parse(&text).unwrap();
        assert_eq!(
            image.registry.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(image.repository, "team/web");
        assert_eq!(image.tag.as_deref(), Some("release-42"));
        assert_eq!(image.digest.as_deref(), Some(DIGEST));
        assert_eq!(image.to_string(), text);
        assert_eq!(
            image.ecr_registry(),
            Some(("123456789012".into(), "us-east-1".into()))
        );
    }

    #[test]
    fn registry_port_is_not_mistaken_for_a_tag() {
        let image = ImageRef::parse("localhost:5000/web").unwrap();
        assert_eq!(image.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(image.tag, None);
        assert_eq!(image.ecr_registry(), None);
    }

    #[test]
    fn short_names_have_no_registry() {
        let image = ImageRef::parse("library/nginx:1.27").unwrap();
        assert_eq!(image.registry, None);
        assert_eq!(image.name(), "library/nginx");
    }

    #[test]
    fn pinning_keeps_the_tag_visible() {
        let image = ImageRef::parse("registry.example.com/web:release-42").unwrap();
        assert_eq!(
            image.pinned(DIGEST).to_string(),
            format!("registry.example.com/web:release-42@{DIGEST}")
        );
        assert_eq!(
            image.pinned(DIGEST).with_tag("v2").to_string(),
            "registry.example.com/web:v2"
        );
    }
}
