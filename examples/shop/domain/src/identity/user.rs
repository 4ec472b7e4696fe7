use async_trait::async_trait;
use serde::Serialize;
use strata_domain::{
    AggregateRoot, AggregateState, DomainEvent, Entity, Id, Repository, RepositoryError, Version,
};

use super::{Email, PasswordHash, Role};

/// A user's identity.
pub type UserId = Id<User>;

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserEvent {
    /// Someone registered.
    Registered {
        /// The new user.
        id: UserId,
        /// Their role.
        role: &'static str,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        "identity.user_registered"
    }
}

/// Someone who can sign in: the identity context's aggregate root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    id: UserId,
    email: Email,
    password_hash: PasswordHash,
    role: Role,
    state: AggregateState<UserEvent>,
}

impl User {
    /// A new user with `role`, signing in with `email` and the password hashed as
    /// `password_hash`.
    #[must_use]
    pub fn register(email: Email, password_hash: PasswordHash, role: Role) -> Self {
        let id = UserId::generate();
        let mut user = Self {
            id,
            email,
            password_hash,
            role,
            state: AggregateState::new(),
        };
        user.record(UserEvent::Registered {
            id,
            role: role.as_str(),
        });
        user
    }

    /// Rebuilds a stored user.
    #[must_use]
    pub fn restore(
        id: UserId,
        email: Email,
        password_hash: PasswordHash,
        role: Role,
        version: Version,
    ) -> Self {
        Self {
            id,
            email,
            password_hash,
            role,
            state: AggregateState::loaded(version),
        }
    }

    /// The sign-in address.
    #[must_use]
    pub fn email(&self) -> &Email {
        &self.email
    }

    /// The stored password hash.
    #[must_use]
    pub fn password_hash(&self) -> &PasswordHash {
        &self.password_hash
    }

    /// The role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Entity for User {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.id
    }
}

impl AggregateRoot for User {
    type Event = UserEvent;
    const KIND: &'static str = "user";

    fn state(&self) -> &AggregateState<UserEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<UserEvent> {
        &mut self.state
    }
}

/// Where users are kept.
#[async_trait]
pub trait UserRepository: Repository<User> {
    /// The user signing in with `email`, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`UserRepository`].
    pub UserRepository {}

    #[async_trait]
    impl Repository<User> for UserRepository {
        async fn find(&self, id: UserId) -> Result<Option<User>, RepositoryError>;
        async fn save(&self, aggregate: &mut User) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl UserRepository for UserRepository {
        async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_email_and_hash_when_registered_then_registered_is_recorded() {
        let mut user = User::register(
            Email::parse("ada@example.com").expect("valid"),
            PasswordHash::from_phc("$argon2id$x"),
            Role::Customer,
        );
        assert!(user.version().is_new());
        assert_eq!(
            user.take_events(),
            [UserEvent::Registered {
                id: user.id(),
                role: "customer"
            }]
        );
    }
}
