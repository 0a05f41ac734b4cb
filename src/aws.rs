//! What every AWS client here shares: how configuration is loaded (the
//! standard chain, plus an S3/SNS-compatible endpoint), and how SDK errors
//! are said to a person.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the standard AWS configuration. With `endpoint_url` (moto, `MinIO`,
/// `LocalStack`...) and no region configured, the region defaults to
/// us-east-1, which such servers ignore; `region` (from an ARN) wins.
pub async fn sdk_config(endpoint_url: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build(),
    );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        let region_set = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if !region_set {
            // Saves a metadata-service lookup that cannot succeed off EC2.
            loader = loader.region(Region::new("us-east-1"));
        }
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// An error's chain of causes, each once, joined with `: ` (the SDK's own
/// rendering adds Debug output that helps nobody reading a terminal).
#[must_use]
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
