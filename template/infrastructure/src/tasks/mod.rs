//! Adapters of the tasks context.

mod task_entity;
mod task_repository;

pub use task_repository::SeaOrmTaskRepository;
