//! Identity adapters: users, argon2id password hashing, refresh tokens.

mod argon2_hasher;
mod entities;
mod refresh_tokens;
mod user_repository;

pub use argon2_hasher::Argon2PasswordHasher;
pub use refresh_tokens::SeaOrmRefreshTokens;
pub use user_repository::SeaOrmUserRepository;
