//! Renderers: turn observations, injection logs and campaign reports into text for people (`view`: the
//! campaign report's view model they share), and `phoebe monitor`'s counters into its table, JSON lines, metrics
//! and live page (`monitor`).
//! Pure functions from model types to strings; printing is the caller's business.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod monitor;
pub mod summary;
pub mod terminal;
pub mod view;

pub use self::merge::merge;
