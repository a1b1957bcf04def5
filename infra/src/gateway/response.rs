//! A function's answer as HTTP, as API Gateway's payload v2 turns it into one.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::GatewayError;
use crate::invoke::is_error_document;

/// Turns a function's answer into an HTTP response, as API Gateway's payload v2 does: a
/// `{statusCode, headers, multiValueHeaders, cookies, body, isBase64Encoded}` object is the
/// response; any other valid JSON is a 200 `application/json` body; an error document or invalid
/// JSON is an error.
pub fn response_from_payload(
    function: &str,
    payload: &[u8],
) -> Result<Response<Body>, GatewayError> {
    let bad = |reason: String| GatewayError::BadResponse {
        function: function.to_owned(),
        reason,
    };
    if is_error_document(payload) {
        let doc: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let message = doc
            .get("errorMessage")
            .and_then(Value::as_str)
            .or_else(|| doc.get("errorType").and_then(Value::as_str))
            .unwrap_or("error")
            .to_owned();
        return Err(GatewayError::Function {
            function: function.to_owned(),
            message,
        });
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut response = Response::new(Body::from(Bytes::copy_from_slice(payload)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    let mut object = object.clone();
    for key in ["cookies", "headers", "multiValueHeaders"] {
        if object.get(key).is_none_or(Value::is_null) {
            let empty = if key == "cookies" {
                json!([])
            } else {
                json!({})
            };
            object.insert(key.to_owned(), empty);
        }
    }
    let parsed: ApiGatewayV2httpResponse =
        serde_json::from_value(Value::Object(object)).map_err(|e| bad(e.to_string()))?;
    let status = u16::try_from(parsed.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            bad(format!(
                "statusCode {} is not an HTTP status",
                parsed.status_code
            ))
        })?;

    let body = match parsed.body {
        None | Some(LambdaBody::Empty) => Bytes::new(),
        Some(LambdaBody::Text(text)) if parsed.is_base64_encoded => Bytes::from(
            BASE64
                .decode(text.trim())
                .map_err(|e| bad(format!("body is not base64: {e}")))?,
        ),
        Some(LambdaBody::Text(text)) => Bytes::from(text),
        Some(LambdaBody::Binary(bytes)) => Bytes::from(bytes),
        Some(_) => Bytes::new(),
    };

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in parsed.headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in parsed.multi_value_headers.iter() {
        headers.append(name.clone(), value.clone());
    }
    for cookie in &parsed.cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use http_body_util::BodyExt as _;

    async fn body_of(r: Response<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, bytes)
    }

    #[tokio::test]
    async fn a_v2_response_becomes_http() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"location": "/orders/o-1", "content-type": "application/json"},
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "cookies": ["a=b; Path=/"],
            "body": "{\"orderId\":\"o-1\"}",
            "isBase64Encoded": false
        });
        let r = response_from_payload("f", payload.to_string().as_bytes()).expect("response");
        let (status, headers, body) = body_of(r).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["location"], "/orders/o-1");
        assert_eq!(headers.get_all("x-m").iter().count(), 2);
        assert_eq!(headers["set-cookie"], "a=b; Path=/");
        assert_eq!(&body[..], br#"{"orderId":"o-1"}"#);
    }

    #[tokio::test]
    async fn a_base64_response_is_decoded_and_missing_fields_default() {
        let payload =
            json!({"statusCode": 200, "body": BASE64.encode([0u8, 1, 2]), "isBase64Encoded": true});
        let r = response_from_payload("f", payload.to_string().as_bytes()).expect("response");
        let (status, _, body) = body_of(r).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], &[0u8, 1, 2]);
    }

    #[tokio::test]
    async fn json_without_status_code_is_a_200_json_body() {
        let r = response_from_payload("f", br#"{"hello":"world"}"#).expect("response");
        let (status, headers, body) = body_of(r).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(&body[..], br#"{"hello":"world"}"#);
    }

    #[test]
    fn an_error_document_or_garbage_is_a_bad_gateway() {
        let e = response_from_payload("f", br#"{"errorType":"X","errorMessage":"boom"}"#)
            .expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
        let e = response_from_payload("f", b"not json").expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
        let e = response_from_payload("f", br#"{"statusCode":"x"}"#).expect_err("error");
        assert_eq!(e.status_and_code().0, StatusCode::BAD_GATEWAY);
    }
}
