//! The API's error body `{"error": message, "kind": ...}` and the one mapping from error kinds
//! to HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::client::control::ControlError;

/// An error as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    kind: &'a str,
}

impl ApiFailure {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ControlError::BadRequest(message.into()).into()
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token: send 'Authorization: Bearer TOKEN' (or ?token= for EventSource)",
        )
    }
}

/// The mapping: each `ControlError` kind has one status and one `kind` string.
impl From<ControlError> for ApiFailure {
    fn from(e: ControlError) -> Self {
        let (status, kind) = match &e {
            ControlError::UnknownTorrent(_) => (StatusCode::NOT_FOUND, "unknown_torrent"),
            ControlError::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
            ControlError::BadTorrent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_torrent"),
            ControlError::BadRequest(_) | ControlError::PathRules(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ControlError::DataConflict(_) => (StatusCode::CONFLICT, "data_conflict"),
            ControlError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            ControlError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        };
        Self::new(status, kind, e.to_string())
    }
}

impl From<super::paths::PathError> for ApiFailure {
    fn from(e: super::paths::PathError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            kind: self.kind,
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_control_error_has_its_status() {
        let cases = [
            (
                ControlError::UnknownTorrent("x".into()),
                404,
                "unknown_torrent",
            ),
            (ControlError::Duplicate("x".into()), 409, "duplicate"),
            (ControlError::BadTorrent("x".into()), 422, "bad_torrent"),
            (ControlError::BadRequest("x".into()), 400, "bad_request"),
            (
                ControlError::PathRules(crate::lanes::PathRulesError::TooLong { field: "acl" }),
                400,
                "bad_request",
            ),
            (ControlError::DataConflict("x".into()), 409, "data_conflict"),
            (ControlError::Storage("x".into()), 500, "storage"),
            (ControlError::ShuttingDown, 503, "shutting_down"),
        ];
        for (e, status, kind) in cases {
            let f = ApiFailure::from(e);
            assert_eq!((f.status.as_u16(), f.kind), (status, kind));
        }
    }
}
