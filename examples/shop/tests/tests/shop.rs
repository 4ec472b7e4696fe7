//! The sample shop's black-box and persistence suites, in one test binary so they
//! link once.

mod shop {
    mod api;
    mod audit;
    mod auth;
    mod caching;
    mod idempotency;
    mod logs;
    mod openapi;
    mod operability;
    mod ordering;
    mod persistence;
    mod web;
}
