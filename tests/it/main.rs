//! One integration-test binary: runs the real `flowship` executable against the real local services that
//! `ci/test` starts (see `ci/services`). Each module covers one area.

mod base;
mod build;
mod bump;
mod bump_shapes;
mod cli;
mod corpus;
mod credentials;
mod doctor;
mod fake;
mod faults;
mod harbor;
mod harness;
mod images;
mod own_image;
mod packaging;
mod peer_cases;
mod peer_suites;
mod pipeline;
mod plain_http;
mod prefect_real;
mod proxy;
mod pull_proof;
mod real_projects;
mod register;
mod release;
mod render;
mod sentinel;
mod settings;
mod sign;
mod sign_policy;
mod tokens;
mod worker;
