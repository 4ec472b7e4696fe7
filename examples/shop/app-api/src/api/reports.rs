use axum::Json;
use axum::response::IntoResponse;
use serde::Deserialize;
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::{parameter, rules};
use strata_app_api::http::{ApiQuery, MayAsk, Problem};
use strata_domain::ValidationFailure;
use utoipa::openapi::path::ParameterIn;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::reports::{ReadSalesReport, SalesReportView, parse_day};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sales_report))
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`.
#[derive(Debug, Deserialize)]
struct SalesReportParams {
    from: String,
    to: String,
}

impl utoipa::IntoParams for SalesReportParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        ["from", "to"]
            .into_iter()
            .map(|name| {
                parameter(
                    name,
                    ParameterIn::Query,
                    if name == "from" {
                        "The first day (UTC), `YYYY-MM-DD`."
                    } else {
                        "The last day (UTC), `YYYY-MM-DD`; a span that ends before it begins \
                         has no days."
                    },
                    true,
                    rules::date(),
                )
            })
            .collect()
    }
}

/// The sales report of a span of days: what the catalog did each day, as its
/// events reported it (they reach the report through the `sales_report`
/// consumer, a moment after they happened).
#[utoipa::path(
    get,
    path = "/api/reports/sales",
    tag = "operations",
    security(("bearer" = ["reports.read"])),
    params(SalesReportParams),
    responses(
        (status = 200, description = "The report", body = SalesReportView),
        (status = 400, description = "`from` or `to` is missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` or `to` is not a calendar date", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn sales_report(
    may: MayAsk<ReadSalesReport>,
    ApiQuery(params): ApiQuery<SalesReportParams>,
) -> Result<impl IntoResponse, AppError> {
    let day = |field: &'static str, text: &str| {
        parse_day(text).ok_or_else(|| {
            AppError::from(ValidationFailure::single(
                field,
                "date",
                "must be a calendar date, YYYY-MM-DD",
            ))
        })
    };
    let query = ReadSalesReport {
        from: day("from", &params.from)?,
        to: day("to", &params.to)?,
    };
    Ok(Json(may.ask(query).await?))
}
