//! The Organizations events queue over the SDK.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::{Client, types::DeleteMessageBatchRequestEntry};

use super::map_err;
use crate::{
    api::{QueueApi, QueueMessage},
    error::AwsError,
};

pub(super) struct SdkQueue {
    client: Client,
    url: String,
}

impl SdkQueue {
    pub(super) fn new(config: &SdkConfig, url: &str) -> Self {
        // A long poll waits up to 20 s for a message: the attempt may take that long, and a little more.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let config = aws_sdk_sqs::config::Builder::from(config).timeout_config(timeouts).build();
        SdkQueue { client: Client::from_conf(config), url: url.to_string() }
    }
}

#[async_trait]
impl QueueApi for SdkQueue {
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<QueueMessage>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| map_err("sqs:ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(QueueMessage {
                    id: m.message_id().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<Vec<(String, String)>, AwsError> {
        if receipt_handles.is_empty() {
            return Ok(vec![]);
        }
        let call = "sqs:DeleteMessageBatch";
        let entries = receipt_handles
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::from_code(call, Some("ConstructionFailure"), None, e.to_string()))?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| map_err(call, e))?;
        Ok(out
            .failed()
            .iter()
            .map(|f| {
                let receipt = f.id().parse::<usize>().ok().and_then(|i| receipt_handles.get(i)).cloned();
                (receipt.unwrap_or_default(), format!("{}: {}", f.code(), f.message().unwrap_or_default()))
            })
            .collect())
    }
}
