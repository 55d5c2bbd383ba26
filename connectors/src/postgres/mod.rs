//! postgres connector.
