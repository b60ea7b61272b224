//! The auth endpoints. Each operation has its own response enum, so the spec lists exactly
//! the answers it can give.
use super::bodies::{LoginRequest, MeBody, RefreshRequest, RegisterRequest, SessionBody};
use super::problem::{FieldProblem, Problem, ServerFailure};
use super::rate_limit::{Limited, RateLimits};
use application::{
    AuthError, LogInCommand, LogInError, RefreshError, RegisterUserCommand, RegisterUserError,
    Registration, SignedIn, TraceContext,
};
use domain::User;
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::auth::Bearer;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, SecurityScheme, Tags};
use std::future::Future;
use std::sync::Arc;

/// What the HTTP adapter needs of the application, whatever adapters sit behind it.
pub trait AccountService: Send + Sync + 'static {
    fn register(
        &self,
        command: RegisterUserCommand,
    ) -> impl Future<Output = Result<Registration, RegisterUserError>> + Send;
    fn log_in(
        &self,
        command: LogInCommand,
    ) -> impl Future<Output = Result<SignedIn, LogInError>> + Send;
    fn refresh(
        &self,
        refresh_token: String,
    ) -> impl Future<Output = Result<SignedIn, RefreshError>> + Send;
    fn current_user(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<User, AuthError>> + Send;
    fn log_out(&self, access_token: &str) -> impl Future<Output = Result<(), AuthError>> + Send;
}

#[derive(Tags)]
enum ApiTags {
    /// Sign-up and sign-in
    Auth,
}

/// An access token from register, login or refresh.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerAuth(Bearer);

pub struct AuthApi<S> {
    accounts: Arc<S>,
    limits: Arc<RateLimits>,
}

impl<S> AuthApi<S> {
    pub fn new(accounts: S, limits: Arc<RateLimits>) -> Self {
        Self {
            accounts: Arc::new(accounts),
            limits,
        }
    }
}

fn rate_limited(limited: &Limited) -> (Json<Problem>, u64) {
    let retry_after = limited.retry_after_secs();
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many requests; retry in {retry_after} s"),
    );
    (json(problem), retry_after)
}

/// For a request without a token (RFC 6750, section 3).
const BEARER_CHALLENGE: &str = "Bearer";
/// For a request whose token was refused.
const INVALID_TOKEN_CHALLENGE: &str = "Bearer error=\"invalid_token\"";

/// The `Idempotency-Key` header as sent. poem-openapi reads a header that is not visible ASCII,
/// or sent twice, as absent or as its first copy; either would silently drop the protection
/// the client asked for, so such keys are passed on to fail validation instead.
fn raw_idempotency_key(request: &Request) -> Option<String> {
    let mut values = request.headers().get_all("idempotency-key").iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(String::new()); // two keys: invalid
    }
    Some(String::from_utf8_lossy(first.as_bytes()).into_owned())
}

/// Every failed sign-in is answered no sooner than this after it arrived: longer than a
/// hash takes here, so that the answer's timing tells nothing about the account.
const FAILED_SIGN_IN_FLOOR: std::time::Duration = std::time::Duration::from_millis(250);

fn json(problem: Problem) -> Json<Problem> {
    Json(problem)
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "register_bad_request")]
enum RegisterResponse {
    /// The account exists and its `user.registered` event is recorded for publishing. With
    /// `Idempotent-Replayed: true`, this answers a retry of an earlier request with the same
    /// `Idempotency-Key`: same user, same refresh token, a fresh access token.
    #[oai(status = 201)]
    Created(
        Json<SessionBody>,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// A field is invalid (`VALIDATION_FAILED`, with every invalid field listed) or the body is
    /// not the expected JSON (`MALFORMED_REQUEST`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The email or the username belongs to another account (`USER_ALREADY_EXISTS`), or a
    /// request with the same `Idempotency-Key` is still running (`IDEMPOTENCY_KEY_IN_USE`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than 64 KiB (`PAYLOAD_TOO_LARGE`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The `Idempotency-Key` was used for a different request (`IDEMPOTENCY_KEY_REUSED`).
    #[oai(status = 422, content_type = "application/problem+json")]
    UnprocessableEntity(Json<Problem>),
    /// Too many attempts from this client or at this account (`RATE_LIMITED`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// The service is at capacity (`SERVICE_UNAVAILABLE`): retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`INTERNAL_ERROR`); the body has a request id to quote.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

fn register_bad_request(error: poem::Error) -> RegisterResponse {
    let problem = Problem::from_framework(error.status(), error.to_string());
    match error.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => RegisterResponse::UnsupportedMediaType(json(problem)),
        StatusCode::PAYLOAD_TOO_LARGE => RegisterResponse::PayloadTooLarge(json(problem)),
        status if status.is_server_error() => RegisterResponse::Internal(json(problem)),
        _ => RegisterResponse::BadRequest(json(problem)),
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
                Self::BadRequest(json(problem))
            }
            RegisterUserError::EmailTaken => Self::Conflict(json(Problem::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "an account with this email already exists",
            ))),
            RegisterUserError::UsernameTaken => Self::Conflict(json(Problem::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "an account with this username already exists",
            ))),
            RegisterUserError::IdempotencyKeyInUse => Self::Conflict(json(Problem::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_IN_USE",
                "a request with this Idempotency-Key is still in progress; retry shortly",
            ))),
            RegisterUserError::IdempotencyKeyReused => {
                Self::UnprocessableEntity(json(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used for a different request",
                )))
            }
            RegisterUserError::Unexpected(error) => Self::from_unexpected(&error),
        }
    }
}

/// The answers of the operations that exchange credentials for a session.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "session_bad_request")]
enum SessionResponse {
    /// Signed in: a new access token and refresh token.
    #[oai(status = 200)]
    Ok(Json<SessionBody>),
    /// The body is not the expected JSON (`MALFORMED_REQUEST`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// `INVALID_CREDENTIALS` (login: one answer for an unknown account and a wrong password),
    /// `INVALID_REFRESH_TOKEN` or `TOKEN_REVOKED` (refresh).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The body is larger than 64 KiB (`PAYLOAD_TOO_LARGE`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Too many attempts from this client or at this account (`RATE_LIMITED`); retry after
    /// `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// The service is at capacity (`SERVICE_UNAVAILABLE`): retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`INTERNAL_ERROR`).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

fn session_bad_request(error: poem::Error) -> SessionResponse {
    let problem = Problem::from_framework(error.status(), error.to_string());
    match error.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => SessionResponse::UnsupportedMediaType(json(problem)),
        StatusCode::PAYLOAD_TOO_LARGE => SessionResponse::PayloadTooLarge(json(problem)),
        status if status.is_server_error() => SessionResponse::Internal(json(problem)),
        _ => SessionResponse::BadRequest(json(problem)),
    }
}

impl From<LogInError> for SessionResponse {
    fn from(error: LogInError) -> Self {
        match error {
            LogInError::InvalidCredentials => Self::Unauthorized(json(Problem::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "the email or username and password do not match an account",
            ))),
            LogInError::Unexpected(error) => Self::from_unexpected(&error),
        }
    }
}

impl From<RefreshError> for SessionResponse {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid => Self::Unauthorized(json(Problem::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_REFRESH_TOKEN",
                "the refresh token is invalid, expired or revoked",
            ))),
            RefreshError::Reused => Self::Unauthorized(json(Problem::new(
                StatusCode::UNAUTHORIZED,
                "TOKEN_REVOKED",
                "the refresh token was already used; the session is revoked, sign in again",
            ))),
            RefreshError::Unexpected(error) => Self::from_unexpected(&error),
        }
    }
}

/// The answers of operations that need an access token.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bearer_bad_request")]
enum MeResponse {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(Json<MeBody>),
    /// The access token is missing, malformed, expired or wrongly signed (`INVALID_TOKEN`), or
    /// was revoked by a logout (`TOKEN_REVOKED`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The service is at capacity (`SERVICE_UNAVAILABLE`): retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`INTERNAL_ERROR`).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "logout_bad_request")]
enum LogoutResponse {
    /// The access token and every refresh token of its session are revoked.
    #[oai(status = 204)]
    LoggedOut,
    /// The access token is missing, malformed, expired or wrongly signed (`INVALID_TOKEN`), or
    /// was already revoked (`TOKEN_REVOKED`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The service is at capacity (`SERVICE_UNAVAILABLE`): retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side (`INTERNAL_ERROR`).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

fn unauthorized(error: &AuthError) -> Option<Problem> {
    match error {
        AuthError::InvalidToken => Some(Problem::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "the access token is missing or invalid",
        )),
        AuthError::Revoked => Some(Problem::new(
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
            "the access token was revoked",
        )),
        AuthError::Unexpected(_) => None,
    }
}

fn no_token() -> (Json<Problem>, String) {
    let problem = Problem::new(
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
        "the access token is missing or invalid",
    );
    (json(problem), BEARER_CHALLENGE.into())
}

fn bearer_bad_request(_: poem::Error) -> MeResponse {
    let (problem, challenge) = no_token();
    MeResponse::Unauthorized(problem, challenge)
}

fn logout_bad_request(_: poem::Error) -> LogoutResponse {
    let (problem, challenge) = no_token();
    LogoutResponse::Unauthorized(problem, challenge)
}

impl From<AuthError> for MeResponse {
    fn from(error: AuthError) -> Self {
        match (unauthorized(&error), error) {
            (Some(problem), _) => Self::Unauthorized(json(problem), INVALID_TOKEN_CHALLENGE.into()),
            (None, AuthError::Unexpected(error)) => Self::from_unexpected(&error),
            (None, _) => unreachable!("every other error is unauthorized"),
        }
    }
}

impl From<AuthError> for LogoutResponse {
    fn from(error: AuthError) -> Self {
        match (unauthorized(&error), error) {
            (Some(problem), _) => Self::Unauthorized(json(problem), INVALID_TOKEN_CHALLENGE.into()),
            (None, AuthError::Unexpected(error)) => Self::from_unexpected(&error),
            (None, _) => unreachable!("every other error is unauthorized"),
        }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl<S: AccountService> AuthApi<S> {
    /// Register a new user
    ///
    /// Creates the account and, in the same transaction, records a `user.registered` event
    /// that is published to RabbitMQ. Answers without waiting for the broker, and signs the
    /// new user in.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        request: &Request,
        body: Json<RegisterRequest>,
        /// Optional. A retry with the same key and body within 24 hours gets the first answer
        /// and creates nothing; the same key with another body gets 422. Use a UUID.
        #[oai(name = "Idempotency-Key")]
        #[allow(unused_variables)]
        idempotency_key: Header<Option<String>>,
    ) -> RegisterResponse {
        if let Err(limited) = self.limits.register(&self.limits.client_of(request)) {
            let (problem, retry_after) = rate_limited(&limited);
            return RegisterResponse::TooManyRequests(problem, retry_after);
        }
        let Json(body) = body;
        let command = RegisterUserCommand {
            email: body.email.0,
            username: body.username.0,
            password: body.password.0,
            idempotency_key: raw_idempotency_key(request),
            trace: request.extensions().get::<TraceContext>().cloned(),
        };
        match self.accounts.register(command).await {
            Ok(registration) => RegisterResponse::Created(
                Json(registration.signed_in.into()),
                registration.replayed.then(|| "true".to_owned()),
            ),
            Err(error) => error.into(),
        }
    }

    /// Sign in
    ///
    /// By email or username, in any case and with any padding. An unknown account and a wrong
    /// password get the same answer, after the same work.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(&self, request: &Request, body: Json<LoginRequest>) -> SessionResponse {
        let started = tokio::time::Instant::now();
        let Json(body) = body;
        if let Err(limited) = self
            .limits
            .login(&self.limits.client_of(request), &body.email_or_username.0)
        {
            let (problem, retry_after) = rate_limited(&limited);
            return SessionResponse::TooManyRequests(problem, retry_after);
        }
        let command = LogInCommand {
            email_or_username: body.email_or_username.0,
            password: body.password.0,
        };
        match self.accounts.log_in(command).await {
            Ok(signed_in) => SessionResponse::Ok(Json(signed_in.into())),
            Err(error) => {
                if matches!(error, LogInError::InvalidCredentials) {
                    // Unknown accounts are verified against a dummy hash, yet measured sign-ins
                    // still differed by milliseconds (allocator and cache effects of where the
                    // hash comes from). A floor makes every failure take the same time.
                    tokio::time::sleep_until(started + FAILED_SIGN_IN_FLOOR).await;
                }
                error.into()
            }
        }
    }

    /// Exchange a refresh token for a new pair
    ///
    /// The presented token is used up (rotation). A concurrent duplicate within a few seconds
    /// gets the same new pair; a later reuse revokes the whole session.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(&self, request: &Request, body: Json<RefreshRequest>) -> SessionResponse {
        if let Err(limited) = self.limits.refresh(&self.limits.client_of(request)) {
            let (problem, retry_after) = rate_limited(&limited);
            return SessionResponse::TooManyRequests(problem, retry_after);
        }
        match self.accounts.refresh(body.0.refresh_token.0).await {
            Ok(signed_in) => SessionResponse::Ok(Json(signed_in.into())),
            Err(error) => error.into(),
        }
    }

    /// The signed-in user
    #[oai(path = "/auth/me", method = "get", operation_id = "me")]
    async fn me(&self, auth: BearerAuth) -> MeResponse {
        match self.accounts.current_user(&auth.0.token).await {
            Ok(user) => MeResponse::Ok(Json(MeBody { user: user.into() })),
            Err(error) => error.into(),
        }
    }

    /// Log out
    ///
    /// Revokes this access token and every refresh token of its session, for every instance
    /// of the service.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: BearerAuth) -> LogoutResponse {
        match self.accounts.log_out(&auth.0.token).await {
            Ok(()) => LogoutResponse::LoggedOut,
            Err(error) => error.into(),
        }
    }
}

/// Stands in for the use cases when only the OpenAPI document is wanted.
pub(super) struct SpecOnly;

fn spec_only() -> anyhow::Error {
    anyhow::anyhow!("the spec-only API serves no requests")
}

impl AccountService for SpecOnly {
    async fn register(&self, _: RegisterUserCommand) -> Result<Registration, RegisterUserError> {
        Err(spec_only().into())
    }
    async fn log_in(&self, _: LogInCommand) -> Result<SignedIn, LogInError> {
        Err(spec_only().into())
    }
    async fn refresh(&self, _: String) -> Result<SignedIn, RefreshError> {
        Err(spec_only().into())
    }
    async fn current_user(&self, _: &str) -> Result<User, AuthError> {
        Err(spec_only().into())
    }
    async fn log_out(&self, _: &str) -> Result<(), AuthError> {
        Err(spec_only().into())
    }
}

impl ServerFailure for RegisterResponse {
    fn unavailable(problem: Json<Problem>, retry_after: u64) -> Self {
        Self::Unavailable(problem, retry_after)
    }

    fn internal(problem: Json<Problem>) -> Self {
        Self::Internal(problem)
    }
}

impl ServerFailure for SessionResponse {
    fn unavailable(problem: Json<Problem>, retry_after: u64) -> Self {
        Self::Unavailable(problem, retry_after)
    }

    fn internal(problem: Json<Problem>) -> Self {
        Self::Internal(problem)
    }
}

impl ServerFailure for MeResponse {
    fn unavailable(problem: Json<Problem>, retry_after: u64) -> Self {
        Self::Unavailable(problem, retry_after)
    }

    fn internal(problem: Json<Problem>) -> Self {
        Self::Internal(problem)
    }
}

impl ServerFailure for LogoutResponse {
    fn unavailable(problem: Json<Problem>, retry_after: u64) -> Self {
        Self::Unavailable(problem, retry_after)
    }

    fn internal(problem: Json<Problem>) -> Self {
        Self::Internal(problem)
    }
}
