//! Task use cases: create a task, complete it, get one, list them.

mod cache_keys;
mod commands;
mod handlers;
mod queries;
mod task_view;

use std::sync::Arc;

pub use commands::{CompleteTask, CreateTask};
pub use handlers::TaskHandlers;
pub use queries::{GetTask, ListTasks};
use strata_app_api::application::{DispatcherBuilder, KeyRequirement};
pub use task_view::TaskView;

/// Registers every task use case with `handlers` as its handler. Creating a
/// task accepts an `Idempotency-Key`, so a retried create makes one task.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, handlers: Arc<TaskHandlers>) -> DispatcherBuilder {
    dispatcher
        .idempotent_command::<CreateTask>(handlers.clone(), KeyRequirement::Optional)
        .command::<CompleteTask>(handlers.clone())
        .query::<GetTask>(handlers.clone())
        .query::<ListTasks>(handlers)
}
