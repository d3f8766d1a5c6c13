//! The one error type of flowsnap.
//!
//! Every layer returns `Error`; only `api::respond` turns it into an HTTP response (the JSON error
//! document of spec section 2). The store never mentions HTTP: it says *what* went wrong (not
//! found, conflict, ...) and the API layer maps that kind to a status code.

use std::fmt;

/// What went wrong, in the terms the contract uses. Each kind maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// The request body stopped arriving for longer than `idle_timeout_secs`.
    RequestTimeout,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
    InsufficientStorage,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::RequestTimeout => 408,
            Kind::Conflict => 409,
            Kind::PreconditionFailed => 412,
            Kind::PayloadTooLarge => 413,
            Kind::UnsupportedMediaType => 415,
            Kind::TooManyRequests => 429,
            Kind::Internal => 500,
            Kind::Unavailable => 503,
            Kind::InsufficientStorage => 507,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::BadRequest => "Bad request",
            Kind::Unauthorized => "Unauthorized",
            Kind::Forbidden => "Forbidden",
            Kind::NotFound => "Resource not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::RequestTimeout => "Request timeout",
            Kind::Conflict => "Conflict",
            Kind::PreconditionFailed => "Precondition failed",
            Kind::PayloadTooLarge => "Payload too large",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::TooManyRequests => "Too many requests",
            Kind::Internal => "Internal server error",
            Kind::Unavailable => "Service unavailable",
            Kind::InsufficientStorage => "Insufficient storage",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    /// Words a person can act on: which field, which limit, which rule.
    pub detail: String,
    /// JSON pointer into the request body, for body errors.
    pub pointer: Option<String>,
    /// For 405: the methods the path supports.
    pub allow: Option<&'static str>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: detail.into(),
            pointer: None,
            allow: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Error {
        Error::new(Kind::BadRequest, detail)
    }
    /// A 400 about one member of the request body.
    pub fn invalid(pointer: &str, detail: impl Into<String>) -> Error {
        Error {
            pointer: Some(pointer.to_string()),
            ..Error::new(Kind::BadRequest, detail)
        }
    }
    pub fn forbidden(detail: impl Into<String>) -> Error {
        Error::new(Kind::Forbidden, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Error {
        Error::new(Kind::NotFound, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Error {
        Error::new(Kind::Conflict, detail)
    }
    pub fn precondition(detail: impl Into<String>) -> Error {
        Error::new(Kind::PreconditionFailed, detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Error {
        Error::new(Kind::PayloadTooLarge, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Error {
        Error::new(Kind::Internal, detail)
    }
    pub fn with_pointer(mut self, pointer: &str) -> Error {
        self.pointer = Some(pointer.to_string());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.title(),
            self.kind.status(),
            self.detail
        )
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::new(
                Kind::InsufficientStorage,
                "The database has no room to grow (disk full or size limit reached); nothing was \
                 changed. Free space on the server's disk, then retry.",
            ),
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => Error::new(
                Kind::Unavailable,
                "The database is busy with another writer; nothing was changed. Retry shortly.",
            ),
            _ => {
                log::error!("database error: {e}");
                Error::internal("An internal error happened; it has been logged.")
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        log::error!("i/o error: {e}");
        Error::internal("An internal error happened; it has been logged.")
    }
}
