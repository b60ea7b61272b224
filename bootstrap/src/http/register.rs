//! `POST /auth/register`.
use super::problem::{FieldProblem, Problem};
use super::strict_string::StrictString;
use application::{RegisterUserCommand, RegisterUserError, Registration};
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// What the HTTP adapter needs of the application: the register use case, whatever its
/// adapters are.
pub trait Registrations: Send + Sync + 'static {
    fn register(
        &self,
        command: RegisterUserCommand,
    ) -> impl Future<Output = Result<Registration, RegisterUserError>> + Send;
}

#[derive(Tags)]
enum ApiTags {
    /// Sign-up and sign-in
    Auth,
}

pub struct AuthApi<R> {
    registrations: Arc<R>,
}

impl<R> AuthApi<R> {
    pub fn new(registrations: R) -> Self {
        Self {
            registrations: Arc::new(registrations),
        }
    }
}

/// A new account. Email and username are trimmed; uniqueness of both is case-insensitive.
#[derive(Object)]
#[oai(deny_unknown_fields, example)]
struct RegisterRequest {
    /// A valid email address, at most 254 characters.
    email: StrictString,
    /// 3 to 32 ASCII letters, digits, `.`, `_` or `-`.
    username: StrictString,
    /// 8 to 256 characters.
    #[oai(write_only)]
    password: StrictString,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: StrictString("alice@example.com".into()),
            username: StrictString("alice".into()),
            password: StrictString("correct horse battery staple".into()),
        }
    }
}

/// A user as clients see it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct UserBody {
    id: Uuid,
    email: String,
    username: String,
    /// ISO-8601 UTC with milliseconds, e.g. `2025-10-19T16:37:15.123Z`; the same instant as
    /// `data.createdAt` in the `user.registered` event.
    created_at: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RegisteredBody {
    /// A JWT (HS256) for `Authorization: Bearer`.
    access_token: String,
    user: UserBody,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
enum RegisterResponse {
    /// The account exists and its `user.registered` event is recorded for publishing.
    #[oai(status = 201)]
    Created(Json<RegisteredBody>),
    /// A field is invalid (`VALIDATION_FAILED`, with every invalid field listed) or the body is
    /// not the expected JSON (`MALFORMED_REQUEST`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The email or the username belongs to another account (`USER_ALREADY_EXISTS`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than 64 KiB (`PAYLOAD_TOO_LARGE`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Something failed on our side (`INTERNAL_ERROR`); the body has a request id to quote.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

fn bad_request(error: poem::Error) -> RegisterResponse {
    let problem = Problem::from_framework(error.status(), error.to_string());
    match error.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => RegisterResponse::UnsupportedMediaType(Json(problem)),
        StatusCode::PAYLOAD_TOO_LARGE => RegisterResponse::PayloadTooLarge(Json(problem)),
        status if status.is_server_error() => RegisterResponse::Internal(Json(problem)),
        _ => RegisterResponse::BadRequest(Json(problem)),
    }
}

impl From<Registration> for RegisteredBody {
    fn from(registration: Registration) -> Self {
        let user = registration.user;
        Self {
            access_token: registration.access_token.expose_secret().to_owned(),
            user: UserBody {
                id: user.id.as_uuid(),
                email: user.email.to_string(),
                username: user.username.to_string(),
                created_at: user.created_at.to_string(),
            },
        }
    }
}

impl From<RegisterUserError> for RegisterResponse {
    fn from(error: RegisterUserError) -> Self {
        match error {
            RegisterUserError::Invalid(fields) => {
                let mut problem = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    "one or more fields are invalid",
                );
                problem.errors = Some(
                    fields
                        .into_iter()
                        .map(|e| FieldProblem {
                            field: e.field.to_owned(),
                            message: e.message,
                        })
                        .collect(),
                );
                Self::BadRequest(Json(problem))
            }
            RegisterUserError::EmailTaken => Self::Conflict(Json(Problem::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "an account with this email already exists",
            ))),
            RegisterUserError::UsernameTaken => Self::Conflict(Json(Problem::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "an account with this username already exists",
            ))),
            RegisterUserError::Unexpected(error) => Self::Internal(Json(Problem::internal(&error))),
        }
    }
}

#[OpenApi]
impl<R: Registrations> AuthApi<R> {
    /// Register a new user
    ///
    /// Creates the account and, in the same transaction, records a `user.registered` event
    /// that is published to RabbitMQ. Answers without waiting for the broker.
    #[oai(
        path = "/auth/register",
        method = "post",
        operation_id = "register",
        tag = "ApiTags::Auth"
    )]
    async fn register(&self, body: Json<RegisterRequest>) -> RegisterResponse {
        let Json(body) = body;
        let command = RegisterUserCommand {
            email: body.email.0,
            username: body.username.0,
            password: body.password.0,
        };
        match self.registrations.register(command).await {
            Ok(registration) => RegisterResponse::Created(Json(registration.into())),
            Err(error) => error.into(),
        }
    }
}

/// Stands in for the use case when only the OpenAPI document is wanted.
pub(super) struct SpecOnly;

impl Registrations for SpecOnly {
    async fn register(&self, _: RegisterUserCommand) -> Result<Registration, RegisterUserError> {
        Err(RegisterUserError::Unexpected(anyhow::anyhow!(
            "the spec-only API serves no requests"
        )))
    }
}
