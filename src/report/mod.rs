//! Renderers: turn observations, injection logs and (later) experiment reports into text for people.
//! Pure functions from model types to strings; printing is the caller's business.

pub mod summary;
