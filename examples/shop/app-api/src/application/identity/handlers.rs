use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use shop_domain::identity::{
    Email, Password, PasswordHash, PasswordHasher, RefreshTokens, Role, TokenFamily, User,
    UserRepository,
};
use strata_app_api::application::{AppError, CommandHandler, RequestContext, UseCaseContext};
use strata_domain::ports::{
    Clock, Propagation, RateLimitError, RateLimiter, UnitOfWork, in_unit_of_work,
};
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

/// Limits against password guessing and sign-up floods.
///
/// Only *failed* sign-ins count, per account and client together and per
/// client: a client guessing one account's password is stopped, as is one
/// trying many accounts, while the account's owner signing in from a client
/// that has not been failing is never refused because strangers guessed wrong
/// (a limit per account alone would let anyone lock anyone out). Accounts are
/// keyed by a digest of the normalised email, so the keys have one length
/// whatever an attacker sends.
#[derive(Clone)]
pub struct Throttles {
    /// Failed sign-ins per (account, client network).
    pub failed_sign_ins_per_account_and_client: Arc<dyn RateLimiter>,
    /// Failed sign-ins per client network, whatever the account.
    pub failed_sign_ins_per_client: Arc<dyn RateLimiter>,
    /// Registrations per client network.
    pub registrations_per_client: Arc<dyn RateLimiter>,
}

impl std::fmt::Debug for Throttles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttles").finish_non_exhaustive()
    }
}

/// The limiter keys of one sign-in attempt.
struct SignInKeys {
    account_and_client: String,
    client: String,
}

impl SignInKeys {
    fn of(account: &str, request: &RequestContext) -> Self {
        let client = client_of(request);
        let digest = Sha256::digest(account.as_bytes());
        let account: String = digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self {
            account_and_client: format!("{account}@{client}"),
            client,
        }
    }
}

/// Whom per-client limits count: the caller's network, or one shared key for
/// callers whose address is unknown (the service's own jobs).
fn client_of(request: &RequestContext) -> String {
    request
        .client_network()
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Throttles {
    /// Counts a sign-in attempt against its client before any account is
    /// looked up or password checked, refusing one that has failed too often.
    /// Counting first means guesses sent at once cannot all be checked before
    /// the first failure is recorded; a success is forgiven afterwards.
    async fn admit_sign_in(&self, keys: &SignInKeys) -> Result<(), AppError> {
        refused_when_limited(
            self.failed_sign_ins_per_account_and_client
                .acquire(&keys.account_and_client)
                .await,
        )?;
        let per_client =
            refused_when_limited(self.failed_sign_ins_per_client.acquire(&keys.client).await);
        if per_client.is_err() {
            forgive_one(
                &self.failed_sign_ins_per_account_and_client,
                &keys.account_and_client,
            )
            .await;
        }
        per_client
    }

    /// Takes an attempt that was not a wrong password back off its client's
    /// failures.
    async fn forgive(&self, keys: &SignInKeys) {
        forgive_one(
            &self.failed_sign_ins_per_account_and_client,
            &keys.account_and_client,
        )
        .await;
        forgive_one(&self.failed_sign_ins_per_client, &keys.client).await;
    }
}

async fn forgive_one(limiter: &Arc<dyn RateLimiter>, key: &str) {
    if let Err(error) = limiter.forgive(key).await {
        tracing::warn!(error = %error, "a sign-in attempt could not be forgiven");
    }
}

fn refused_when_limited(result: Result<(), RateLimitError>) -> Result<(), AppError> {
    match result {
        Ok(()) => Ok(()),
        Err(RateLimitError::Limited { retry_after }) => Err(AppError::TooManyRequests {
            retry_after_secs: retry_after.as_secs().max(1),
        }),
        // Failing closed: an unavailable limiter must not open the door to
        // unlimited password guessing.
        Err(error @ RateLimitError::Unavailable(_)) => Err(AppError::internal(error)),
    }
}

/// The identity use-case handlers, over the ports they need.
///
/// Registering and signing in hash or check a password — tens of milliseconds
/// of a core — so they run outside any unit of work
/// (`Propagation::NotSupported`): the password is hashed or checked first, and
/// only the short write that follows opens one. No transaction, and on SQLite
/// not the one writer, is held while a password is hashed.
pub struct Identity {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn RefreshTokens>,
    clock: Arc<dyn Clock>,
    unit_of_work: Arc<dyn UnitOfWork>,
    throttles: Throttles,
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

/// The ports [`Identity`] works with.
#[derive(Clone)]
pub struct IdentityPorts {
    /// The accounts.
    pub users: Arc<dyn UserRepository>,
    /// Hashes and checks passwords.
    pub hasher: Arc<dyn PasswordHasher>,
    /// The refresh tokens.
    pub tokens: Arc<dyn RefreshTokens>,
    /// Tells the time.
    pub clock: Arc<dyn Clock>,
    /// Begins the units of work the handlers that run outside one need.
    pub unit_of_work: Arc<dyn UnitOfWork>,
}

impl std::fmt::Debug for IdentityPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPorts").finish_non_exhaustive()
    }
}

impl Identity {
    /// Handlers over the identity ports.
    ///
    /// # Errors
    /// When the decoy hash cannot be made.
    pub async fn new(
        ports: IdentityPorts,
        throttles: Throttles,
        settings: IdentitySettings,
    ) -> Result<Self, RepositoryError> {
        let decoy = ports.hasher.decoy().await?;
        Ok(Self {
            users: ports.users,
            hasher: ports.hasher,
            tokens: ports.tokens,
            clock: ports.clock,
            unit_of_work: ports.unit_of_work,
            throttles,
            settings,
            decoy,
        })
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

    /// Makes a user with `role`: the password is hashed outside any unit of
    /// work, then the account is stored in one of its own.
    ///
    /// # Errors
    /// `email_taken` when the address has an account; storage failures.
    async fn create_user(
        &self,
        email: Email,
        password: &Password,
        role: Role,
    ) -> Result<User, AppError> {
        let taken = || AppError::Taken {
            code: "email_taken",
            field: "email".into(),
            message: "an account with this email already exists".into(),
        };
        if self.users.find_by_email(&email).await?.is_some() {
            return Err(taken());
        }
        let hash = self.hasher.hash(password).await?;
        in_unit_of_work(self.unit_of_work.as_ref(), Propagation::Required, async {
            let mut user = User::register(email, hash, role);
            // Two registrations of one address racing past the check above
            // meet the unique index here.
            self.users
                .save(&mut user)
                .await
                .map_err(|error| match error {
                    RepositoryError::Duplicate { .. } => taken(),
                    other => other.into(),
                })?;
            Ok(user)
        })
        .await
    }
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
        cx: &UseCaseContext,
        command: RegisterCustomer,
    ) -> Result<UserView, AppError> {
        refused_when_limited(
            self.throttles
                .registrations_per_client
                .acquire(&client_of(cx.request()))
                .await,
        )?;
        let email = Email::parse(&command.email)?;
        let user = self
            .create_user(email, &command.password, Role::Customer)
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
        match self
            .create_user(email, &command.password, Role::Admin)
            .await
        {
            Ok(_) => Ok(true),
            Err(AppError::Taken {
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
        let keys = SignInKeys::of(&account, cx.request());
        self.throttles.admit_sign_in(&keys).await?;
        let user = match Email::parse(&account) {
            Ok(email) => self.users.find_by_email(&email).await,
            Err(_) => Ok(None),
        };
        let user = match user {
            Ok(user) => user,
            Err(error) => {
                // Not the caller's failure: the attempt does not count.
                self.throttles.forgive(&keys).await;
                return Err(error.into());
            }
        };
        let hash = user.as_ref().map_or(&self.decoy, User::password_hash);
        let matches = self.hasher.verify(&command.password, hash).await;
        // A wrong password keeps the attempt it was counted as.
        let Some(user) = user.filter(|_| matches) else {
            return Err(AppError::Unauthenticated);
        };
        self.throttles.forgive(&keys).await;
        in_unit_of_work(
            self.unit_of_work.as_ref(),
            Propagation::Required,
            self.start_session(&user, TokenFamily::generate()),
        )
        .await
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
    use strata_domain::ports::MockRateLimiter;
    use strata_domain::ports::{MockClock, MockUnitOfWork};

    use super::*;
    use crate::application::identity::register;

    const NOW: u64 = 1_800_000_000;

    struct Ports {
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockRefreshTokens,
        per_account_and_client: MockRateLimiter,
        per_client: MockRateLimiter,
    }

    fn open_limiter() -> MockRateLimiter {
        let mut limiter = MockRateLimiter::new();
        limiter.expect_acquire().returning(|_| Ok(()));
        limiter.expect_forgive().returning(|_| Ok(()));
        limiter
    }

    impl Ports {
        fn new() -> Self {
            let mut hasher = MockPasswordHasher::new();
            // The decoy made at start-up.
            hasher
                .expect_decoy()
                .times(1)
                .returning(|| Ok(PasswordHash::from_phc("$argon2id$decoy")));
            Self {
                users: MockUserRepository::new(),
                hasher,
                tokens: MockRefreshTokens::new(),
                per_account_and_client: open_limiter(),
                per_client: open_limiter(),
            }
        }

        async fn dispatcher(self) -> Dispatcher {
            let mut clock = MockClock::new();
            clock
                .expect_now()
                .returning(|| UNIX_EPOCH + Duration::from_secs(NOW));
            let unit_of_work = || {
                let mut unit_of_work = MockUnitOfWork::new();
                unit_of_work.expect_begin().returning(|_| Ok(()));
                unit_of_work.expect_finish().returning(Ok);
                Arc::new(unit_of_work)
            };
            let identity = Identity::new(
                IdentityPorts {
                    users: Arc::new(self.users),
                    hasher: Arc::new(self.hasher),
                    tokens: Arc::new(self.tokens),
                    clock: Arc::new(clock),
                    unit_of_work: unit_of_work(),
                },
                Throttles {
                    failed_sign_ins_per_account_and_client: Arc::new(self.per_account_and_client),
                    failed_sign_ins_per_client: Arc::new(self.per_client),
                    registrations_per_client: Arc::new(open_limiter()),
                },
                IdentitySettings::default(),
            )
            .await
            .expect("identity");
            register(
                Dispatcher::builder().middleware(middleware::standard(unit_of_work())),
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

    fn ada() -> User {
        User::register(
            Email::parse("ada@example.com").expect("an email"),
            PasswordHash::from_phc("$argon2id$ada"),
            Role::Customer,
        )
    }

    fn sign_in(password: &str) -> SignIn {
        SignIn {
            email: "  Ada@Example.com ".into(),
            password: Password::offered(password),
        }
    }

    fn from_client() -> RequestContext {
        RequestContext::background().with_client_addr("203.0.113.9".parse().expect("an address"))
    }

    #[tokio::test]
    async fn a_client_that_failed_too_often_is_refused_before_any_password_is_checked() {
        let mut ports = Ports::new();
        ports.per_account_and_client = MockRateLimiter::new();
        ports
            .per_account_and_client
            .expect_acquire()
            .returning(|_| {
                Err(RateLimitError::Limited {
                    retry_after: Duration::from_secs(42),
                })
            });
        ports.per_account_and_client.expect_forgive().never();
        ports.users.expect_find_by_email().never();
        ports.hasher.expect_verify().never();

        let error = ports
            .dispatcher()
            .await
            .execute(&from_client(), sign_in("a guess"))
            .await
            .expect_err("throttled");

        assert!(matches!(
            error,
            AppError::TooManyRequests {
                retry_after_secs: 42
            }
        ));
    }

    #[tokio::test]
    async fn every_attempt_is_counted_first_and_a_success_forgiven_keyed_by_a_digest_of_the_account_and_the_client()
     {
        let user = ada();
        let mut ports = Ports::new();
        ports
            .users
            .expect_find_by_email()
            .returning(move |_| Ok(Some(user.clone())));
        ports
            .hasher
            .expect_verify()
            .returning(|password, _| password.expose() == "the right one");
        ports
            .tokens
            .expect_issue()
            .times(1)
            .returning(|_, _, _| Ok("refresh".into()));
        ports.per_account_and_client = MockRateLimiter::new();
        let account = Sha256::digest(b"ada@example.com")[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>();
        let key = format!("{account}@203.0.113.9");
        let forgiven = key.clone();
        ports
            .per_account_and_client
            .expect_acquire()
            .withf(move |sent| sent == key)
            .times(2)
            .returning(|_| Ok(()));
        ports
            .per_account_and_client
            .expect_forgive()
            .withf(move |sent| sent == forgiven)
            .times(1)
            .returning(|_| Ok(()));
        ports.per_client = MockRateLimiter::new();
        ports
            .per_client
            .expect_acquire()
            .withf(|key| key == "203.0.113.9")
            .times(2)
            .returning(|_| Ok(()));
        ports
            .per_client
            .expect_forgive()
            .withf(|key| key == "203.0.113.9")
            .times(1)
            .returning(|_| Ok(()));
        let dispatcher = ports.dispatcher().await;

        let refused = dispatcher
            .execute(&from_client(), sign_in("a wrong one"))
            .await;
        assert!(matches!(refused, Err(AppError::Unauthenticated)));
        dispatcher
            .execute(&from_client(), sign_in("the right one"))
            .await
            .expect("signed in, and the attempt forgiven");
    }
}
