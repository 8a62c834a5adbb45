//! Act: apply one planned action to the target.

use ops_core::Result;

use crate::contract::TargetRef;
use crate::decide::Action;
use crate::observe::Clients;

/// Apply `action`.
pub async fn apply(clients: &Clients, action: &Action) -> Result<()> {
    match action {
        Action::SetCapacity {
            target: TargetRef::Group { name },
            to,
            ..
        } => clients.groups.set_desired(name, *to).await,
        Action::SetCapacity {
            target: TargetRef::Service { cluster, service },
            to,
            ..
        } => clients.ecs.set_desired_count(cluster, service, *to).await,
        Action::Remember {
            target: TargetRef::Group { .. },
            tag_resource,
            tags,
        } => clients.groups.tag(tag_resource, tags).await,
        Action::Remember {
            target: TargetRef::Service { .. },
            tag_resource,
            tags,
        } => clients.ecs.tag(tag_resource, tags).await,
        Action::Forget {
            target: TargetRef::Group { .. },
            tag_resource,
            keys,
        } => clients.groups.untag(tag_resource, keys).await,
        Action::Forget {
            target: TargetRef::Service { .. },
            tag_resource,
            keys,
        } => clients.ecs.untag(tag_resource, keys).await,
    }
}
