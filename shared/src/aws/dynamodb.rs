//! DynamoDB adapter: small JSON documents keyed by name, each with a version, written only if
//! nobody else wrote it since it was read (optimistic concurrency).
//!
//! Items are `{key: S, version: N, document: S}`. A function that reads a document at version v
//! and writes it back with `expected = Some(v)` loses cleanly (`Ok(false)`) when another
//! invocation wrote first, so two overlapping runs never both act on the same change.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// Keys per BatchGetItem call, DynamoDB's limit.
const KEYS_PER_BATCH: usize = 100;
/// Rounds of unprocessed keys to retry before giving up (throttled partitions).
const UNPROCESSED_ROUNDS: usize = 5;

/// A stored document and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The document (JSON text).
    pub document: String,
    /// Its version: 1 for the first write.
    pub version: u64,
}

/// A table of versioned documents.
#[derive(Debug, Clone)]
pub struct VersionedDocuments {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl VersionedDocuments {
    /// The store in `table` (partition key `key`, a string).
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        VersionedDocuments {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The documents stored under `keys` (strongly consistent), 100 keys per call; keys with
    /// nothing stored are left out.
    #[instrument(skip(self, keys), fields(table = %self.table, count = keys.len()), err)]
    pub async fn get_many(&self, keys: &[String]) -> Result<BTreeMap<String, Versioned>> {
        let mut found = BTreeMap::new();
        for batch in keys.chunks(KEYS_PER_BATCH) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(
                        batch
                            .iter()
                            .map(|k| {
                                std::collections::HashMap::from([(
                                    "key".to_string(),
                                    AttributeValue::S(k.clone()),
                                )])
                            })
                            .collect(),
                    ))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Refused(format!("DynamoDB keys: {e}")))?,
            );
            for _ in 0..UNPROCESSED_ROUNDS {
                let Some(request) = pending.take() else { break };
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| aws_error("dynamodb", "BatchGetItem", e))?;
                for item in answer
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some((key, versioned)) = versioned(item) {
                        found.insert(key, versioned);
                    }
                }
                pending = answer
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
            if pending.is_some() {
                return Err(Error::Aws(crate::error::AwsError::classify(
                    "dynamodb",
                    "BatchGetItem",
                    Some("ProvisionedThroughputExceededException"),
                    Some("keys were still unprocessed after retries"),
                    Some(400),
                )));
            }
        }
        Ok(found)
    }

    /// Write `document` under `key` as the version after `expected` (`None`: only if nothing is
    /// stored yet). `Ok(false)` when another writer got there first; nothing was written.
    #[instrument(skip(self, document), fields(table = %self.table), err)]
    pub async fn put(&self, key: &str, document: &str, expected: Option<u64>) -> Result<bool> {
        let next = expected.unwrap_or(0) + 1;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("key", AttributeValue::S(key.to_string()))
            .item("version", AttributeValue::N(next.to_string()))
            .item("document", AttributeValue::S(document.to_string()));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(#k)"),
            Some(version) => request
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        if expected.is_none() {
            request = request.expression_attribute_names("#k", "key");
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) => {
                let error = aws_error("dynamodb", "PutItem", error);
                if error.code == "ConditionalCheckFailedException" {
                    Ok(false)
                } else {
                    Err(Error::Aws(error))
                }
            }
        }
    }
}

/// Items per TransactWriteItems call, DynamoDB's limit.
const ITEMS_PER_TRANSACTION: usize = 100;
/// Transactions tried per chunk: the first, and again without the items that lost their condition.
const TRANSACTION_ROUNDS: usize = 3;

impl VersionedDocuments {
    /// Write many documents as [`VersionedDocuments::put`] does each (`(key, document, expected)`,
    /// keys distinct), up to 100 per `TransactWriteItems` call, which needs no permission beyond
    /// `dynamodb:PutItem`. For each, in the order given: `Ok(true)` written, `Ok(false)` another
    /// writer got there first (nothing written), or the error. A transaction is all or nothing, so
    /// when some of its items lose their condition the others are sent again without them.
    #[instrument(skip(self, writes), fields(table = %self.table, count = writes.len()))]
    pub async fn put_all(&self, writes: &[(String, String, Option<u64>)]) -> Vec<Result<bool>> {
        let mut results: Vec<Option<Result<bool>>> = (0..writes.len()).map(|_| None).collect();
        let indexes: Vec<usize> = (0..writes.len()).collect();
        for chunk in indexes.chunks(ITEMS_PER_TRANSACTION) {
            let mut left: Vec<usize> = chunk.to_vec();
            for _ in 0..TRANSACTION_ROUNDS {
                if left.is_empty() {
                    break;
                }
                match self.transact(writes, &left).await {
                    Ok(()) => {
                        for &i in &left {
                            results[i] = Some(Ok(true));
                        }
                        left.clear();
                    }
                    Err(Cancelled::Lost(lost)) => {
                        for &i in &lost {
                            results[i] = Some(Ok(false));
                        }
                        left.retain(|i| !lost.contains(i));
                    }
                    Err(Cancelled::Failed(error)) => {
                        for &i in &left {
                            results[i] = Some(Err(Error::Aws(error.clone())));
                        }
                        left.clear();
                    }
                }
            }
            for &i in &left {
                results[i] = Some(Err(Error::Aws(crate::error::AwsError::classify(
                    "dynamodb",
                    "TransactWriteItems",
                    Some("TransactionConflictException"),
                    Some("other writers kept cancelling the transaction"),
                    Some(400),
                ))));
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every write has a result"))
            .collect()
    }

    async fn transact(
        &self,
        writes: &[(String, String, Option<u64>)],
        chosen: &[usize],
    ) -> std::result::Result<(), Cancelled> {
        let mut items = Vec::new();
        for &i in chosen {
            let (key, document, expected) = &writes[i];
            let next = expected.unwrap_or(0) + 1;
            let mut put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .item("key", AttributeValue::S(key.clone()))
                .item("version", AttributeValue::N(next.to_string()))
                .item("document", AttributeValue::S(document.clone()));
            put = match expected {
                None => put
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", "key"),
                Some(version) => put
                    .condition_expression("#v = :expected")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(
                        ":expected",
                        AttributeValue::N(version.to_string()),
                    ),
            };
            let put = put.build().map_err(|e| {
                Cancelled::Failed(crate::error::AwsError::classify(
                    "dynamodb",
                    "TransactWriteItems",
                    Some("ValidationException"),
                    Some(&e.to_string()),
                    None,
                ))
            })?;
            items.push(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build(),
            );
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                let reasons: Option<Vec<Option<String>>> = error
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(
                            c.cancellation_reasons()
                                .iter()
                                .map(|r| r.code().map(String::from))
                                .collect(),
                        ),
                        _ => None,
                    });
                let lost: Vec<usize> = reasons
                    .iter()
                    .flatten()
                    .zip(chosen)
                    .filter(|(code, _)| code.as_deref() == Some("ConditionalCheckFailed"))
                    .map(|(_, &i)| i)
                    .collect();
                if lost.is_empty() {
                    Err(Cancelled::Failed(aws_error(
                        "dynamodb",
                        "TransactWriteItems",
                        error,
                    )))
                } else {
                    Err(Cancelled::Lost(lost))
                }
            }
        }
    }
}

/// Why a transaction did not write.
enum Cancelled {
    /// These items lost their condition (the others were not written either).
    Lost(Vec<usize>),
    /// The call failed.
    Failed(crate::error::AwsError),
}

fn versioned(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Option<(String, Versioned)> {
    let key = item.get("key")?.as_s().ok()?.clone();
    let version = item.get("version")?.as_n().ok()?.parse().ok()?;
    let document = item.get("document")?.as_s().ok()?.clone();
    Some((key, Versioned { document, version }))
}
