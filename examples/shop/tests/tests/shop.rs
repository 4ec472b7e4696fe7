//! The sample shop's black-box and persistence suites, in one test binary so they
//! link once.

mod shop {
    mod api;
    mod persistence;
    mod web;
}
