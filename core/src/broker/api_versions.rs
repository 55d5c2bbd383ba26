//! ApiVersions (v0-3): the first request every client sends.
//!
//! Quirks real clients depend on: the response header is always v0 (no tagged fields),
//! whatever the request version; a request at a version we don't speak gets
//! UNSUPPORTED_VERSION with our full list in a v0 body, so the client retries at v0.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use super::dispatch::{Outcome, encode_response, supported_apis};
use super::server::Context;

fn api_list() -> Vec<ApiVersion> {
    supported_apis()
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub(crate) async fn handle(
    _ctx: &Context,
    _header: &RequestHeader,
    _request: ApiVersionsRequest,
    _version: i16,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_list())
}

/// The answer to ApiVersions at a version outside 0..=3: UNSUPPORTED_VERSION, v0 body.
pub(crate) fn unsupported(frame: &Bytes) -> Outcome {
    // The correlation id sits at bytes 4..8 in every request header version.
    let Some(id) = frame.get(4..8) else {
        return Outcome::Close("ApiVersions request too short for a correlation id".into());
    };
    let correlation_id = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
