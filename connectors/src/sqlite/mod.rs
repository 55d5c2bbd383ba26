//! sqlite connector.
