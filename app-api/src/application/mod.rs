//! Use cases and the application's error type. Nothing here knows HTTP or SQL.

mod error;
mod use_case;

pub use error::AppError;
pub use use_case::{Command, CommandHandler, Query, QueryHandler};
