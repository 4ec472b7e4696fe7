use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shop_domain::identity::{
    Email, Password, PasswordHash, PasswordHasher, RefreshTokens, Role, TokenFamily, User,
    UserRepository,
};
use strata_app_api::application::{AppError, CommandHandler, UseCaseContext};
use strata_domain::ports::{Clock, RateLimitError, RateLimiter};
use strata_domain::{Entity, RepositoryError};

use super::{
    EnsureAdministrator, PurgeExpiredSessions, RefreshOutcome, RefreshSession, RegisterCustomer,
    SessionToken, SignIn, SignOut, SignedIn, UserView,
};
use crate::application::permissions::principal_for;

/// How sessions behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentitySettings {
    /// How long a refresh token stays valid.
    pub refresh_token_lifetime: Duration,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            refresh_token_lifetime: Duration::from_secs(14 * 24 * 60 * 60),
        }
    }
}

/// Limits on sign-in attempts, against password guessing: one per account (so a
/// targeted account cannot be guessed fast from many addresses) and one per
/// client address (so one client cannot try many accounts).
#[derive(Clone)]
pub struct SignInThrottles {
    /// Keyed by account email.
    pub per_account: Arc<dyn RateLimiter>,
    /// Keyed by client address.
    pub per_client: Arc<dyn RateLimiter>,
}

impl std::fmt::Debug for SignInThrottles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottles").finish_non_exhaustive()
    }
}

/// The identity use-case handlers, over the ports they need.
pub struct Identity {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn RefreshTokens>,
    clock: Arc<dyn Clock>,
    throttles: SignInThrottles,
    settings: IdentitySettings,
    // A real hash of a password no one knows: checked when the email has no
    // account, so a wrong email takes as long to refuse as a wrong password and
    // timing does not reveal who has an account.
    decoy: PasswordHash,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Handlers over the identity ports.
    ///
    /// # Errors
    /// When the decoy hash cannot be made.
    pub async fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn RefreshTokens>,
        clock: Arc<dyn Clock>,
        throttles: SignInThrottles,
        settings: IdentitySettings,
    ) -> Result<Self, RepositoryError> {
        let decoy = hasher
            .hash(&Password::offered(&uuid::Uuid::new_v4().to_string()))
            .await?;
        Ok(Self {
            users,
            hasher,
            tokens,
            clock,
            throttles,
            settings,
            decoy,
        })
    }

    async fn throttle(limiter: &dyn RateLimiter, key: &str) -> Result<(), AppError> {
        match limiter.acquire(key).await {
            Ok(()) => Ok(()),
            Err(RateLimitError::Limited { retry_after }) => Err(AppError::TooManyRequests {
                retry_after_secs: retry_after.as_secs().max(1),
            }),
            // Failing closed: an unavailable limiter must not open the door to
            // unlimited password guessing.
            Err(error @ RateLimitError::Unavailable(_)) => Err(AppError::internal(error)),
        }
    }

    async fn start_session(&self, user: &User, family: TokenFamily) -> Result<SignedIn, AppError> {
        let expires_at = self.clock.unix_seconds() + self.settings.refresh_token_lifetime.as_secs();
        let token = self.tokens.issue(user.id(), family, expires_at).await?;
        Ok(SignedIn {
            principal: principal_for(user),
            refresh_token: SessionToken(token),
            refresh_expires_at: expires_at,
        })
    }
}

/// Makes a user with `role`.
///
/// # Errors
/// `email_taken` when the address has an account; storage failures.
async fn create_user(
    users: &dyn UserRepository,
    hasher: &dyn PasswordHasher,
    email: Email,
    password: &Password,
    role: Role,
) -> Result<User, AppError> {
    let taken = || AppError::Conflict {
        code: "email_taken",
        message: "an account with this email already exists".into(),
    };
    if users.find_by_email(&email).await?.is_some() {
        return Err(taken());
    }
    let mut user = User::register(email, hasher.hash(password).await?, role);
    users.save(&mut user).await.map_err(|error| match error {
        RepositoryError::Duplicate { .. } => taken(),
        other => other.into(),
    })?;
    Ok(user)
}

fn view(user: &User) -> UserView {
    UserView {
        id: user.id().to_string(),
        email: user.email().to_string(),
        role: user.role().as_str(),
    }
}

#[async_trait]
impl CommandHandler<RegisterCustomer> for Identity {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: RegisterCustomer,
    ) -> Result<UserView, AppError> {
        let email = Email::parse(&command.email)?;
        let user = create_user(
            self.users.as_ref(),
            self.hasher.as_ref(),
            email,
            &command.password,
            Role::Customer,
        )
        .await?;
        Ok(view(&user))
    }
}

#[async_trait]
impl CommandHandler<EnsureAdministrator> for Identity {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: EnsureAdministrator,
    ) -> Result<bool, AppError> {
        let email = Email::parse(&command.email)?;
        if self.users.find_by_email(&email).await?.is_some() {
            return Ok(false);
        }
        // Two instances starting together may both get here; the second finds
        // the account the first made, which is what it wanted.
        match create_user(
            self.users.as_ref(),
            self.hasher.as_ref(),
            email,
            &command.password,
            Role::Admin,
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(AppError::Conflict {
                code: "email_taken",
                ..
            }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl CommandHandler<PurgeExpiredSessions> for Identity {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        _command: PurgeExpiredSessions,
    ) -> Result<u64, AppError> {
        Ok(self.tokens.purge_expired(self.clock.unix_seconds()).await?)
    }
}

#[async_trait]
impl CommandHandler<SignIn> for Identity {
    async fn handle(&self, cx: &UseCaseContext, command: SignIn) -> Result<SignedIn, AppError> {
        let account = command.email.trim().to_lowercase();
        Self::throttle(self.throttles.per_account.as_ref(), &account).await?;
        if let Some(client) = cx.request().client_addr() {
            Self::throttle(self.throttles.per_client.as_ref(), &client.to_string()).await?;
        }
        let user = match Email::parse(&account) {
            Ok(email) => self.users.find_by_email(&email).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            self.hasher.verify(&command.password, &self.decoy).await;
            return Err(AppError::Unauthenticated);
        };
        if !self
            .hasher
            .verify(&command.password, user.password_hash())
            .await
        {
            return Err(AppError::Unauthenticated);
        }
        self.start_session(&user, TokenFamily::generate()).await
    }
}

#[async_trait]
impl CommandHandler<RefreshSession> for Identity {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: RefreshSession,
    ) -> Result<RefreshOutcome, AppError> {
        let presented = &command.refresh_token.0;
        let Some(token) = self.tokens.find(presented).await? else {
            return Ok(RefreshOutcome::Refused);
        };
        if token.revoked || token.expires_at <= self.clock.unix_seconds() {
            return Ok(RefreshOutcome::Refused);
        }
        // A used token presented again (or two exchanges racing) means someone else
        // holds a copy: end the whole session rather than guess which one is the
        // rightful holder.
        if token.used || !self.tokens.consume(presented).await? {
            tracing::warn!(family = %token.family, "a refresh token was reused; its session is revoked");
            self.tokens.revoke_family(token.family).await?;
            return Ok(RefreshOutcome::Refused);
        }
        let Some(user) = self.users.find(token.user).await? else {
            return Ok(RefreshOutcome::Refused);
        };
        Ok(RefreshOutcome::Refreshed(
            self.start_session(&user, token.family).await?,
        ))
    }
}

#[async_trait]
impl CommandHandler<SignOut> for Identity {
    async fn handle(&self, _cx: &UseCaseContext, command: SignOut) -> Result<(), AppError> {
        if let Some(token) = self.tokens.find(&command.refresh_token.0).await? {
            self.tokens.revoke_family(token.family).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The session rules with mockall doubles of every port.

    use std::time::UNIX_EPOCH;

    use shop_domain::identity::{
        MockPasswordHasher, MockRefreshTokens, MockUserRepository, RefreshToken, UserId,
    };
    use strata_app_api::application::{Dispatcher, RequestContext, middleware};
    use strata_domain::ports::{MockClock, MockRateLimiter, MockUnitOfWork};

    use super::*;
    use crate::application::identity::register;

    const NOW: u64 = 1_800_000_000;

    struct Ports {
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockRefreshTokens,
        per_account: MockRateLimiter,
    }

    impl Ports {
        fn new() -> Self {
            let mut hasher = MockPasswordHasher::new();
            // The decoy made at start-up.
            hasher
                .expect_hash()
                .times(1)
                .returning(|_| Ok(PasswordHash::from_phc("$argon2id$decoy")));
            let mut per_account = MockRateLimiter::new();
            per_account.expect_acquire().returning(|_| Ok(()));
            Self {
                users: MockUserRepository::new(),
                hasher,
                tokens: MockRefreshTokens::new(),
                per_account,
            }
        }

        async fn dispatcher(self) -> Dispatcher {
            let mut clock = MockClock::new();
            clock
                .expect_now()
                .returning(|| UNIX_EPOCH + Duration::from_secs(NOW));
            let mut unit_of_work = MockUnitOfWork::new();
            unit_of_work.expect_begin().returning(|_| Ok(()));
            unit_of_work.expect_finish().returning(Ok);
            let mut per_client = MockRateLimiter::new();
            per_client.expect_acquire().returning(|_| Ok(()));
            let identity = Identity::new(
                Arc::new(self.users),
                Arc::new(self.hasher),
                Arc::new(self.tokens),
                Arc::new(clock),
                SignInThrottles {
                    per_account: Arc::new(self.per_account),
                    per_client: Arc::new(per_client),
                },
                IdentitySettings::default(),
            )
            .await
            .expect("identity");
            register(
                Dispatcher::builder().middleware(middleware::standard(Arc::new(unit_of_work))),
                Arc::new(identity),
            )
            .build()
        }
    }

    fn stored(used: bool) -> RefreshToken {
        RefreshToken {
            family: TokenFamily::generate(),
            user: UserId::generate(),
            expires_at: NOW + 60,
            used,
            revoked: false,
        }
    }

    fn refresh(token: &str) -> RefreshSession {
        RefreshSession {
            refresh_token: SessionToken(token.into()),
        }
    }

    #[tokio::test]
    async fn a_reused_refresh_token_revokes_its_family_and_issues_nothing() {
        let token = stored(true);
        let family = token.family;
        let mut ports = Ports::new();
        ports
            .tokens
            .expect_find()
            .returning(move |_| Ok(Some(token.clone())));
        ports.tokens.expect_consume().never();
        ports
            .tokens
            .expect_revoke_family()
            .withf(move |revoked| *revoked == family)
            .times(1)
            .returning(|_| Ok(()));
        ports.tokens.expect_issue().never();

        let outcome = ports
            .dispatcher()
            .await
            .execute(&RequestContext::background(), refresh("stolen"))
            .await
            .expect("an answer, so the revocation commits");

        assert!(matches!(outcome, RefreshOutcome::Refused));
    }

    #[tokio::test]
    async fn losing_a_race_to_exchange_a_token_counts_as_reuse() {
        let token = stored(false);
        let mut ports = Ports::new();
        ports
            .tokens
            .expect_find()
            .returning(move |_| Ok(Some(token.clone())));
        ports
            .tokens
            .expect_consume()
            .times(1)
            .returning(|_| Ok(false));
        ports
            .tokens
            .expect_revoke_family()
            .times(1)
            .returning(|_| Ok(()));
        ports.tokens.expect_issue().never();

        let outcome = ports
            .dispatcher()
            .await
            .execute(&RequestContext::background(), refresh("raced"))
            .await
            .expect("an answer");

        assert!(matches!(outcome, RefreshOutcome::Refused));
    }

    #[tokio::test]
    async fn an_expired_refresh_token_is_refused_without_revoking() {
        let mut token = stored(false);
        token.expires_at = NOW;
        let mut ports = Ports::new();
        ports
            .tokens
            .expect_find()
            .returning(move |_| Ok(Some(token.clone())));
        ports.tokens.expect_consume().never();
        ports.tokens.expect_revoke_family().never();

        let outcome = ports
            .dispatcher()
            .await
            .execute(&RequestContext::background(), refresh("old"))
            .await
            .expect("an answer");

        assert!(matches!(outcome, RefreshOutcome::Refused));
    }

    #[tokio::test]
    async fn signing_in_to_an_unknown_account_checks_the_decoy_and_is_refused() {
        let mut ports = Ports::new();
        ports.users.expect_find_by_email().returning(|_| Ok(None));
        ports
            .hasher
            .expect_verify()
            .withf(|_, hash| hash.as_phc() == "$argon2id$decoy")
            .times(1)
            .returning(|_, _| false);
        ports.tokens.expect_issue().never();

        let error = ports
            .dispatcher()
            .await
            .execute(
                &RequestContext::background(),
                SignIn {
                    email: "nobody@example.com".into(),
                    password: Password::offered("whatever it is"),
                },
            )
            .await
            .expect_err("no such account");

        assert!(matches!(error, AppError::Unauthenticated));
    }

    #[tokio::test]
    async fn a_throttled_account_is_refused_before_any_password_is_checked() {
        let mut ports = Ports::new();
        ports.per_account = MockRateLimiter::new();
        ports.per_account.expect_acquire().returning(|_| {
            Err(RateLimitError::Limited {
                retry_after: Duration::from_secs(42),
            })
        });
        ports.users.expect_find_by_email().never();
        ports.hasher.expect_verify().never();

        let error = ports
            .dispatcher()
            .await
            .execute(
                &RequestContext::background(),
                SignIn {
                    email: "ada@example.com".into(),
                    password: Password::offered("a guess"),
                },
            )
            .await
            .expect_err("throttled");

        assert!(matches!(
            error,
            AppError::TooManyRequests {
                retry_after_secs: 42
            }
        ));
    }
}
