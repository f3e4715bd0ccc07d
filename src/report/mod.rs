//! Renderers: turn observations, injection logs and (later) experiment reports into text for people.
//! Pure functions from model types to strings; printing is the caller's business.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod summary;
pub mod terminal;

pub use self::merge::merge;
