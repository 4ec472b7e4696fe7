//! Identity: customers and administrators, their passwords and sessions.

mod email;
mod password;
mod refresh_token;
mod role;
mod user;

pub use email::Email;
#[cfg(feature = "mock")]
pub use password::MockPasswordHasher;
pub use password::{Password, PasswordHash, PasswordHasher};
#[cfg(feature = "mock")]
pub use refresh_token::MockRefreshTokens;
pub use refresh_token::{RefreshToken, RefreshTokens, TokenFamily};
pub use role::Role;
#[cfg(feature = "mock")]
pub use user::MockUserRepository;
pub use user::{User, UserEvent, UserId, UserRepository};
