//! Observe: read from AWS what a decision needs.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{EcsServices, ServiceState};
use ops_core::{Error, Result};

use crate::contract::{self, service_opt_in};
use crate::decide::{Candidate, Problem};

/// Every opted-in service for `repository` in `clusters`, with its current and latest revisions,
/// and the services whose opt-in for it is broken.
pub async fn candidates(
    ecs: &EcsServices,
    clusters: &[String],
    repository: &str,
) -> Result<(Vec<Candidate>, Vec<Problem>)> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for cluster in clusters {
        let arns = ecs.list_services(cluster).await?;
        for service in ecs.describe_many(cluster, &arns).await? {
            if service.tag(contract::REPOSITORY).map(str::trim) != Some(repository) {
                continue;
            }
            match service_opt_in(&service) {
                Some(Ok(opt_in)) => found.push(candidate(ecs, service, opt_in).await?),
                Some(Err(error)) => problems.push(Problem {
                    service: service.qualified_name(),
                    service_arn: service.arn.clone(),
                    problem: error.to_string(),
                }),
                None => {}
            }
        }
    }
    Ok((found, problems))
}

/// One service's candidate: its current revision and, if newer, the family's latest.
pub async fn candidate(
    ecs: &EcsServices,
    service: ServiceState,
    opt_in: contract::OptIn,
) -> Result<Candidate> {
    let current = ecs.task_definition(&service.task_definition).await?;
    let family = current.definition.family().unwrap_or_default().to_string();
    let latest = ecs.task_definition(&family).await?;
    let latest = (latest.arn() != current.arn()).then_some(latest);
    Ok(Candidate {
        service,
        opt_in,
        current,
        latest,
        restore: None,
    })
}

/// Find a service by `cluster/service`, or by `service` alone in the managed clusters.
pub async fn find_service(
    ecs: &EcsServices,
    clusters: &[String],
    name: &str,
) -> Result<ServiceState> {
    let name = name.trim();
    if let Some((cluster, service)) = name.split_once('/') {
        if !clusters.iter().any(|c| c == cluster) {
            return Err(Error::Refused(format!(
                "cluster `{cluster}` is not one deploy-trigger manages (it manages {})",
                clusters.join(", ")
            )));
        }
        return ecs.describe(cluster, service).await;
    }
    let mut matches = Vec::new();
    for cluster in clusters {
        matches.extend(ecs.describe_many(cluster, &[name.to_string()]).await?);
    }
    match matches.len() {
        0 => Err(Error::NotFound {
            kind: "ECS service",
            name: format!("{name} (in {})", clusters.join(", ")),
        }),
        1 => Ok(matches.remove(0)),
        _ => Err(Error::Refused(format!(
            "`{name}` exists in several clusters ({}); name one as cluster/service",
            matches
                .iter()
                .map(|s| s.cluster.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Images of the revisions an outcome names, for the report (missing revisions are skipped).
pub async fn revision_images(
    ecs: &EcsServices,
    revisions: &[Option<String>],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut images = BTreeMap::new();
    for revision in revisions.iter().flatten() {
        if let Ok(state) = ecs.task_definition(revision).await {
            images.insert(state.short_name(), state.images());
        }
    }
    images
}
