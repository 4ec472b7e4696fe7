//! Task use cases: create a task, complete it, get one, list them.

mod commands;
mod handlers;
mod queries;
mod task_view;

use std::sync::Arc;

pub use commands::{CompleteTask, CreateTask};
pub use handlers::TaskHandlers;
pub use queries::{GetTask, ListTasks};
use strata_app_api::application::DispatcherBuilder;
pub use task_view::TaskView;

/// Registers every task use case with `handlers` as its handler.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, handlers: Arc<TaskHandlers>) -> DispatcherBuilder {
    dispatcher
        .command::<CreateTask>(handlers.clone())
        .command::<CompleteTask>(handlers.clone())
        .query::<GetTask>(handlers.clone())
        .query::<ListTasks>(handlers)
}
