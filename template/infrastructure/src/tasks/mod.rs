//! Adapters of the tasks context.

mod seed;
mod task_entity;
mod task_repository;

pub use seed::{SeedError, seed_tasks};
pub use task_repository::SeaOrmTaskRepository;
