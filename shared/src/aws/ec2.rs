//! EC2 adapter: Elastic IP pools and instances, and the changes the associator makes: associate
//! an address only while it is free, and free one from a departed holder by its association id.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Address, Filter, Instance, Tag};
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{AwsError, Error, Result};

/// An Elastic IP allocation at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressState {
    /// Allocation id, `eipalloc-...`.
    pub allocation_id: String,
    /// The public IP.
    pub public_ip: String,
    /// The instance holding it, if any.
    pub instance_id: Option<String>,
    /// The id of its current association (`eipassoc-...`), if it is associated: what
    /// DisassociateAddress names, so that it frees exactly this association and no later one.
    pub association_id: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// An EC2 instance at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceState {
    /// Instance id.
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    /// Availability zone.
    pub zone: Option<String>,
    /// Its primary private IPv4 address.
    pub private_ip: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// Reads pools and instances and associates addresses through the SDK.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
}

impl Ec2 {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        Ec2 {
            client: aws_sdk_ec2::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_ec2::Client {
        &self.client
    }

    /// Addresses whose tag `key` is `value` (or that carry tag `key` at all, when `value` is `None`).
    #[instrument(skip(self), err)]
    pub async fn addresses_tagged(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<AddressState>> {
        let filter = match value {
            Some(value) => Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
            None => Filter::builder().name("tag-key").values(key).build(),
        };
        let answer = self
            .client
            .describe_addresses()
            .filters(filter)
            .send()
            .await
            .map_err(|e| aws_error("ec2", "DescribeAddresses", e))?;
        let mut addresses: Vec<AddressState> =
            answer.addresses().iter().map(address_state).collect();
        addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
        Ok(addresses)
    }

    /// One address by allocation id.
    #[instrument(skip(self), err)]
    pub async fn address(&self, allocation_id: &str) -> Result<AddressState> {
        let answer = self
            .client
            .describe_addresses()
            .allocation_ids(allocation_id)
            .send()
            .await
            .map_err(|e| aws_error("ec2", "DescribeAddresses", e))?;
        answer
            .addresses()
            .first()
            .map(address_state)
            .ok_or_else(|| Error::NotFound {
                kind: "Elastic IP allocation",
                name: allocation_id.to_string(),
            })
    }

    /// Instances by id; ids EC2 does not know are left out.
    #[instrument(skip(self), err)]
    pub async fn instances(&self, ids: &[String]) -> Result<Vec<InstanceState>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .client
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(answer) => Ok(answer
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(instance_state)
                .collect()),
            Err(error) => {
                let error = aws_error("ec2", "DescribeInstances", error);
                // One unknown id fails the whole call; ask one by one to keep the known ones.
                if error.code == "InvalidInstanceID.NotFound" && ids.len() > 1 {
                    let mut found = Vec::new();
                    for id in ids {
                        found.extend(Box::pin(self.instances(std::slice::from_ref(id))).await?);
                    }
                    Ok(found)
                } else if error.code == "InvalidInstanceID.NotFound" {
                    Ok(Vec::new())
                } else {
                    Err(Error::Aws(error))
                }
            }
        }
    }

    /// Running instances whose tag `key` is `value`.
    #[instrument(skip(self), err)]
    pub async fn running_tagged(&self, key: &str, value: &str) -> Result<Vec<InstanceState>> {
        let answer = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(value)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("ec2", "DescribeInstances", e))?;
        Ok(answer
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(instance_state)
            .collect())
    }

    /// Running instances that carry tag `key` (any value), every page.
    #[instrument(skip(self), err)]
    pub async fn running_with_tag(&self, key: &str) -> Result<Vec<InstanceState>> {
        let mut found = Vec::new();
        let mut next = None;
        loop {
            let answer = self
                .client
                .describe_instances()
                .filters(Filter::builder().name("tag-key").values(key).build())
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("running")
                        .build(),
                )
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| aws_error("ec2", "DescribeInstances", e))?;
            found.extend(
                answer
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .map(instance_state),
            );
            next = answer.next_token().map(String::from);
            if next.is_none() {
                return Ok(found);
            }
        }
    }

    /// Associate an address with an instance. With `allow_reassociation` false, EC2 refuses an
    /// address that is already associated: the answer is `Ok(false)`, never a silent theft.
    /// [`Ec2::associate_if_free`] also answers the new association's id.
    #[instrument(skip(self), err)]
    pub async fn associate(
        &self,
        allocation_id: &str,
        instance_id: &str,
        allow_reassociation: bool,
    ) -> Result<bool> {
        Ok(self
            .associate_with(allocation_id, instance_id, allow_reassociation)
            .await?
            .is_some())
    }

    /// Associate an address with an instance only if the address is associated with nothing
    /// (`AllowReassociation=false`): `Some(association id)`, or `None` when EC2 refused because
    /// the address is associated (`Resource.AlreadyAssociated`), e.g. another instance won a race
    /// for it. Of two callers racing for one address, EC2 lets exactly one succeed.
    #[instrument(skip(self), err)]
    pub async fn associate_if_free(
        &self,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<Option<String>> {
        self.associate_with(allocation_id, instance_id, false).await
    }

    async fn associate_with(
        &self,
        allocation_id: &str,
        instance_id: &str,
        allow_reassociation: bool,
    ) -> Result<Option<String>> {
        match self
            .client
            .associate_address()
            .allocation_id(allocation_id)
            .instance_id(instance_id)
            .allow_reassociation(allow_reassociation)
            .send()
            .await
        {
            Ok(answer) => Ok(Some(
                answer.association_id().unwrap_or_default().to_string(),
            )),
            Err(error) => {
                let error: AwsError = aws_error("ec2", "AssociateAddress", error);
                if error.code == "Resource.AlreadyAssociated" {
                    Ok(None)
                } else {
                    Err(Error::Aws(error))
                }
            }
        }
    }

    /// Set tag `key` = `value` on an address (CreateTags on its allocation id).
    #[instrument(skip(self), err)]
    pub async fn tag_address(&self, allocation_id: &str, key: &str, value: &str) -> Result<()> {
        self.client
            .create_tags()
            .resources(allocation_id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map_err(|e| aws_error("ec2", "CreateTags", e))?;
        Ok(())
    }

    /// Remove tag `key` from an address only while its value is still `value` (DeleteTags with
    /// key and value: "the tag is deleted only if the tag's value matches the specified value",
    /// EC2 API reference), so a mark another run has written since is left alone. No error when
    /// the tag is absent or holds another value.
    #[instrument(skip(self), err)]
    pub async fn untag_address(&self, allocation_id: &str, key: &str, value: &str) -> Result<()> {
        self.client
            .delete_tags()
            .resources(allocation_id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map_err(|e| aws_error("ec2", "DeleteTags", e))?;
        Ok(())
    }

    /// End one association by its id. `Ok(false)` when EC2 no longer has that association
    /// (`InvalidAssociationID.NotFound`): someone else disassociated or moved the address since it
    /// was read, and nothing was changed here.
    #[instrument(skip(self), err)]
    pub async fn disassociate(&self, association_id: &str) -> Result<bool> {
        match self
            .client
            .disassociate_address()
            .association_id(association_id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) => {
                let error: AwsError = aws_error("ec2", "DisassociateAddress", error);
                if error.code == "InvalidAssociationID.NotFound" {
                    Ok(false)
                } else {
                    Err(Error::Aws(error))
                }
            }
        }
    }
}

fn address_state(address: &Address) -> AddressState {
    AddressState {
        allocation_id: address.allocation_id().unwrap_or_default().to_string(),
        public_ip: address.public_ip().unwrap_or_default().to_string(),
        instance_id: address
            .instance_id()
            .filter(|id| !id.is_empty())
            .map(String::from),
        association_id: address
            .association_id()
            .filter(|id| !id.is_empty())
            .map(String::from),
        tags: address
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

fn instance_state(instance: &Instance) -> InstanceState {
    InstanceState {
        id: instance.instance_id().unwrap_or_default().to_string(),
        state: instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        zone: instance
            .placement()
            .and_then(|p| p.availability_zone())
            .map(String::from),
        private_ip: instance.private_ip_address().map(String::from),
        tags: instance
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}
