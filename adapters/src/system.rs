//! The real clock and id source.
use application::{Clock, IdGenerator};
use chrono::Utc;
use domain::Timestamp;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }
}

/// UUIDv7: random, yet ordered by creation time, which keeps B-tree inserts local.
#[derive(Clone, Copy, Debug, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn next_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
