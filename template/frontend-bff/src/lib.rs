//! The backend for the web page. It serves the page and fetches the data for it
//! from app-api over HTTP; it never links the application or touches the database.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Deserialize;
use strata_bff::html::{escape, page};
use strata_bff::{Origin, Upstream};

/// A task as the page needs it, read from app-api's JSON.
#[derive(Debug, Deserialize)]
struct Task {
    title: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct TaskPage {
    items: Vec<Task>,
    total: u64,
}

/// The web routes, fetching from the app-api behind `api`.
pub fn router(api: Upstream) -> Router {
    Router::new().route("/", get(task_page)).with_state(api)
}

async fn task_page(State(api): State<Upstream>, origin: Origin) -> impl IntoResponse {
    match api
        .get_json::<TaskPage>(&origin, "/api/tasks?page=1&per_page=100")
        .await
    {
        Ok(tasks) => (StatusCode::OK, render_tasks(&tasks)),
        Err(error) => {
            tracing::warn!(error = %error, "the task page could not load its tasks");
            (
                StatusCode::BAD_GATEWAY,
                page(
                    "Tasks — unavailable",
                    "<h1>Tasks</h1>\n<p class=\"error\">The tasks cannot be shown right now. \
                     Please try again in a moment.</p>",
                ),
            )
        }
    }
}

fn render_tasks(tasks: &TaskPage) -> Html<String> {
    let mut body = String::from("<h1>Tasks</h1>\n");
    if tasks.items.is_empty() {
        body.push_str(
            "<p>No tasks yet. Create one with <code>POST /api/tasks</code> \
             and <code>{\"title\": \"...\"}</code>.</p>",
        );
        return page("Tasks", &body);
    }
    let open = tasks
        .items
        .iter()
        .filter(|task| task.status == "open")
        .count();
    let noun = if tasks.total == 1 { "task" } else { "tasks" };
    let _ = writeln!(body, "<p>{} {noun}, {open} open.</p>", tasks.total);
    body.push_str(
        "<table id=\"tasks\">\n<thead><tr><th>Task</th><th>Status</th></tr></thead>\n<tbody>\n",
    );
    for task in &tasks.items {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&task.title),
            escape(&task.status),
        );
    }
    body.push_str("</tbody>\n</table>");
    page("Tasks", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_task_escaped_with_the_open_count() {
        let tasks = TaskPage {
            items: vec![
                Task {
                    title: "<b>Water</b> & feed".into(),
                    status: "open".into(),
                },
                Task {
                    title: "Sweep".into(),
                    status: "done".into(),
                },
            ],
            total: 2,
        };
        let Html(html) = render_tasks(&tasks);
        assert!(
            html.contains("&lt;b&gt;Water&lt;/b&gt; &amp; feed"),
            "{html}"
        );
        assert!(html.contains("2 tasks, 1 open."), "{html}");
    }

    #[test]
    fn an_empty_list_says_how_to_add_a_task() {
        let Html(html) = render_tasks(&TaskPage {
            items: Vec::new(),
            total: 0,
        });
        assert!(html.contains("No tasks yet"), "{html}");
    }
}
