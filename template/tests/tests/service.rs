//! The service's black-box, persistence and architecture suites, in one test
//! binary so they link once.

mod service {
    mod api;
    mod architecture;
    mod openapi;
    mod operability;
    mod persistence;
    mod web;
}
