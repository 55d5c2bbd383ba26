//! mysql connector.
