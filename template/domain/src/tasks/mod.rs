//! Tasks: things to do, open until someone completes them.

mod task;
mod task_repository;
mod task_title;

pub use task::{Task, TaskEvent, TaskId, TaskStatus};
#[cfg(feature = "mock")]
pub use task_repository::MockTaskRepository;
pub use task_repository::TaskRepository;
pub use task_title::TaskTitle;
