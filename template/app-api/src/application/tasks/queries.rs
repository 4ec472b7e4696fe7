use domain::tasks::TaskId;
use strata_app_api::application::{Access, CachePolicy, Query};
use strata_app_api::validator::Validate;
use strata_domain::Page;

use super::{TaskView, cache_keys};

/// One task by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Validate)]
#[validate(crate = "strata_app_api::validator")]
pub struct GetTask {
    /// The task.
    pub id: TaskId,
}

impl Query for GetTask {
    type Output = TaskView;
    const NAME: &'static str = "tasks.get_task";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        Some(
            CachePolicy::new(cache_keys::task(self.id), cache_keys::TASK_TTL)
                .remember_not_found(cache_keys::NOT_FOUND_TTL),
        )
    }
}

/// One page of tasks, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Validate)]
#[validate(crate = "strata_app_api::validator")]
pub struct ListTasks {
    /// The 1-based page number.
    #[validate(range(min = 1, message = "must be 1 or more"))]
    pub page: u32,
    /// The page size, at most [`strata_domain::PageRequest::MAX_PER_PAGE`].
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub per_page: u32,
}

impl Query for ListTasks {
    type Output = Page<TaskView>;
    const NAME: &'static str = "tasks.list_tasks";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        let key = format!("tasks:list:{}:{}", self.page, self.per_page);
        Some(CachePolicy::new(key, cache_keys::LISTING_TTL).tagged(cache_keys::TASK_LISTINGS))
    }
}
