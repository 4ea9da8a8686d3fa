//! Refusals as Confluent's Schema Registry answers them: an HTTP status, an error code
//! (the status, or the status followed by two digits) and a message, which serializers
//! and tools read from the `{"error_code": ..., "message": ...}` body.

/// A refusal of the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error code {error_code})")]
pub struct RegistryError {
    /// The HTTP status.
    pub status: u16,
    /// Confluent's error code.
    pub error_code: u32,
    /// What went wrong, for a person.
    pub message: String,
}

impl RegistryError {
    fn new(status: u16, error_code: u32, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// 40401: no such subject (or every version of it is soft-deleted).
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    /// 40402: no such version of the subject.
    pub fn version_not_found(version: i32) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    /// 40403: no schema with this id, or not this schema under the subject.
    pub fn schema_not_found() -> Self {
        Self::new(404, 40403, "Schema not found")
    }

    /// 40404: the subject was soft-deleted (a second soft delete).
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40404,
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
            ),
        )
    }

    /// 40405: a permanent delete of a subject that was not soft-deleted first.
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 40406: the version was soft-deleted (a second soft delete).
    pub fn version_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            404,
            40406,
            format!("Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"),
        )
    }

    /// 40407: a permanent delete of a version that was not soft-deleted first.
    pub fn version_not_soft_deleted(subject: &str, version: i32) -> Self {
        Self::new(
            404,
            40407,
            format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
        )
    }

    /// 42201: the schema does not parse, or its type is unknown.
    pub fn invalid_schema(reason: impl std::fmt::Display) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {reason}"))
    }

    /// 42206: live schemas reference the version to delete.
    pub fn reference_exists(subject: &str, version: i32) -> Self {
        Self::new(
            422,
            42206,
            format!("One or more references exist to the schema {{subject={subject},version={version}}}."),
        )
    }

    /// 42202: a version that is neither a positive number nor `latest`.
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            422,
            42202,
            format!("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
        )
    }

    /// 42203: an unknown compatibility level.
    pub fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            422,
            42203,
            format!("Invalid compatibility level: {level}. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"),
        )
    }

    /// 409: the schema is incompatible with earlier versions of the subject.
    pub fn incompatible(subject: &str, reasons: &[String]) -> Self {
        Self::new(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                reasons.join(", ")
            ),
        )
    }
}
