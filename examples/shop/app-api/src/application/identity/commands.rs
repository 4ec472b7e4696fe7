use std::fmt;

use serde::Serialize;
use shop_domain::identity::Password;
use strata_app_api::application::{Access, Command, Principal};
use strata_domain::ports::Propagation;
use validator::{Validate, ValidationErrors};

use super::rules;
use crate::application::permissions;

/// A refresh token as the client holds it. It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(pub String);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// A user as clients see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    /// The user's id.
    #[schema(value_type = uuid::Uuid)]
    pub id: String,
    /// The sign-in address.
    pub email: String,
    /// `customer` or `admin`.
    pub role: &'static str,
}

/// Open a customer account.
#[derive(Debug, Clone)]
pub struct RegisterCustomer {
    /// The sign-in address.
    pub email: String,
    /// The password to set.
    pub password: Password,
}

// Written out rather than derived: the derive copies a field's value into its
// error, and a password must not travel anywhere.
impl Validate for RegisterCustomer {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(error) = rules::email(&self.email) {
            errors.add("email", error);
        }
        if let Err(error) = rules::new_password(&self.password) {
            errors.add("password", error);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Command for RegisterCustomer {
    type Output = UserView;
    const NAME: &'static str = "identity.register_customer";
    const ACCESS: Access = Access::Anyone;
    // The password is hashed outside any unit of work; the account is stored
    // in one of its own.
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// Make the administrator account the configuration names, unless an account
/// with that email exists already. Run by the service itself at start-up.
#[derive(Debug, Clone)]
pub struct EnsureAdministrator {
    /// The administrator's sign-in address.
    pub email: String,
    /// The password to set.
    pub password: Password,
}

impl Validate for EnsureAdministrator {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(error) = rules::email(&self.email) {
            errors.add("email", error);
        }
        if let Err(error) = rules::new_password(&self.password) {
            errors.add("password", error);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Command for EnsureAdministrator {
    /// Whether the account was made now.
    type Output = bool;
    const NAME: &'static str = "identity.ensure_administrator";
    const ACCESS: Access = Access::Permission(permissions::ACCOUNTS_PROVISION);
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// Forget the refresh tokens that expired: run by the service itself, on a
/// schedule.
#[derive(Debug, Clone, Validate)]
pub struct PurgeExpiredSessions {
    /// Why it runs, for the log (`schedule`).
    #[validate(length(min = 1, max = 64))]
    pub reason: String,
}

impl Command for PurgeExpiredSessions {
    /// How many tokens were forgotten.
    type Output = u64;
    const NAME: &'static str = "identity.purge_expired_sessions";
    const ACCESS: Access = Access::Permission(permissions::SESSIONS_PURGE);
    const AUDITED: bool = false;
}

/// Start a session with an email and password.
#[derive(Debug, Clone, Validate)]
pub struct SignIn {
    /// The sign-in address.
    pub email: String,
    /// The password.
    pub password: Password,
}

/// A started (or continued) session: who signed in, and the refresh token that
/// continues the session once the access token expires.
#[derive(Clone)]
pub struct SignedIn {
    /// Who signed in, for the access token.
    pub principal: Principal,
    /// The refresh token; shown to the client once.
    pub refresh_token: SessionToken,
    /// When the refresh token expires, in Unix seconds.
    pub refresh_expires_at: u64,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("principal", &self.principal)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

impl Command for SignIn {
    type Output = SignedIn;
    const NAME: &'static str = "identity.sign_in";
    const ACCESS: Access = Access::Anyone;
    // The password is checked outside any unit of work; the session is stored
    // in one of its own.
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// Exchange a refresh token for a new one (and a new access token). Each refresh
/// token works once: presenting a used one again means it was stolen or leaked,
/// and revokes every token of its session.
#[derive(Debug, Clone, Validate)]
pub struct RefreshSession {
    /// The refresh token.
    pub refresh_token: SessionToken,
}

/// What a refresh came to. A refusal is an answer, not an error, so that the
/// revocation it may have caused is committed.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// The session goes on with a new refresh token.
    Refreshed(SignedIn),
    /// The token was unknown, expired, revoked or reused.
    Refused,
}

impl Command for RefreshSession {
    type Output = RefreshOutcome;
    const NAME: &'static str = "identity.refresh_session";
    const ACCESS: Access = Access::Anyone;
}

/// End a session: its refresh tokens stop working.
#[derive(Debug, Clone, Validate)]
pub struct SignOut {
    /// Any refresh token of the session.
    pub refresh_token: SessionToken,
}

impl Command for SignOut {
    type Output = ();
    const NAME: &'static str = "identity.sign_out";
    const ACCESS: Access = Access::Anyone;
}
