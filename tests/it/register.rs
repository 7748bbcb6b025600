//! `flowship register` against the real Prefect 3.9 servers of the harness (open, and basic auth + CSRF).
//! Every case runs twice: on the open server backed by SQLite, and on the same server backed by PostgreSQL,
//! as production runs it.

mod sqlite {
    const OPEN: &str = "PREFECT_PLAIN";
    include!("register_cases.rs");
}

mod postgres {
    const OPEN: &str = "PREFECT_PG";
    include!("register_cases.rs");
}
