//! Pure domain logic: no I/O, no async, no clock reads. Everything here is unit-tested.

pub mod audit;
pub mod clock;
pub mod device_name;
pub mod drift;
pub mod factor;
pub mod factor_types;
pub mod ids;
pub mod lockout;
pub mod policy;
pub mod text;
pub mod totp;
pub mod webhooks;
