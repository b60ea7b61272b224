//! Request and response bodies of the auth API, and their conversion from the use cases'
//! results. They stay in the HTTP adapter: the use cases never see them.
use super::strict_string::StrictString;
use application::SignedIn;
use domain::User;
use poem_openapi::Object;
use poem_openapi::types::Example;
use uuid::Uuid;

/// A new account. Email and username are trimmed; uniqueness of both is case-insensitive.
#[derive(Object)]
#[oai(deny_unknown_fields, example)]
pub struct RegisterRequest {
    /// A valid email address, at most 254 characters.
    pub email: StrictString,
    /// 3 to 32 ASCII letters, digits, `.`, `_` or `-` (after NFKC normalisation).
    pub username: StrictString,
    /// 8 to 256 characters (after NFKC normalisation), no control characters, not the email or
    /// the username.
    #[oai(write_only)]
    pub password: StrictString,
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

/// Sign-in by email or username, in any case and with any padding.
#[derive(Object)]
#[oai(deny_unknown_fields, rename_all = "camelCase", example)]
pub struct LoginRequest {
    pub email_or_username: StrictString,
    #[oai(write_only)]
    pub password: StrictString,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email_or_username: StrictString("alice".into()),
            password: StrictString("correct horse battery staple".into()),
        }
    }
}

#[derive(Object)]
#[oai(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token from the last register, login or refresh answer. Each one can be
    /// exchanged once; presenting it again after the grace window revokes the session.
    #[oai(write_only)]
    pub refresh_token: StrictString,
}

/// A user as clients see it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    /// ISO-8601 UTC with milliseconds, e.g. `2025-10-19T16:37:15.123Z`; the same instant as
    /// `data.createdAt` in the `user.registered` event.
    pub created_at: String,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            created_at: user.created_at.to_string(),
        }
    }
}

/// A signed-in session: tokens and the user they belong to.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionBody {
    /// A JWT for `Authorization: Bearer`, valid for `expiresIn` seconds.
    pub access_token: String,
    /// An opaque token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
    pub user: UserBody,
}

impl From<SignedIn> for SessionBody {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.tokens.access_token.expose_secret().to_owned(),
            refresh_token: signed_in.tokens.refresh_token.expose_secret().to_owned(),
            expires_in: signed_in.tokens.expires_in.as_secs(),
            token_type: "Bearer".into(),
            user: signed_in.user.into(),
        }
    }
}

#[derive(Object)]
pub struct MeBody {
    pub user: UserBody,
}
