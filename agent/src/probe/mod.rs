//! Local checks. Each runs off the async workers and publishes its latest result; none
//! decides anything (the driver and core do), and none may block a heartbeat or an HTTP
//! answer.

pub mod load;
